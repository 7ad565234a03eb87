"""Tensor bundles: TensorFlow's files read, checked and written back byte for byte; errors named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minigraph import codec
from minigraph.bundle import Bundle, read_bundle, shard_path, write_bundle
from minigraph.errors import BundleError
from minigraph.schema import BundleEntryProto, BundleHeaderProto
from minigraph.table import read_table, write_table

from conftest import FIXTURES, digest_values

SAVEDMODELS = FIXTURES / "savedmodels"
MODELS = ("digits_keras", "module_mixed")


def _prefix(model: str) -> Path:
    return SAVEDMODELS / model / "variables" / "variables"


def _copy(model: str, tmp_path: Path) -> Path:
    """A scratch copy of a fixture's variables/ directory; returns its prefix."""
    shutil.copytree(SAVEDMODELS / model / "variables", tmp_path / "variables")
    return tmp_path / "variables" / "variables"


def _rewrite_index(prefix: Path, edit) -> None:
    """Re-encode the index after ``edit(items)`` changed its (key, message) list in place."""
    index = Path(f"{prefix}.index")
    items = read_table(index.read_bytes(), "index")
    messages = [(k, BundleHeaderProto.FromString(v) if k == b"" else BundleEntryProto.FromString(v))
                for k, v in items]
    edit(messages)
    index.write_bytes(write_table([(k, m.SerializeToString()) for k, m in messages]))


@pytest.mark.parametrize("model", MODELS)
def test_round_trip_is_byte_identical(model: str, tmp_path: Path) -> None:
    bundle = read_bundle(_prefix(model))
    write_bundle(bundle, tmp_path / "variables")
    for name in ("variables.index", "variables.data-00000-of-00001"):
        assert (tmp_path / name).read_bytes() == (_prefix(model).parent / name).read_bytes(), name


@pytest.mark.parametrize("model", MODELS)
def test_values_match_what_tensorflow_read(model: str, expected_savedmodels: dict) -> None:
    bundle = read_bundle(_prefix(model))
    facts = expected_savedmodels[model]["variables"]
    assert sorted(facts) == sorted(k for k in bundle.entries if k != "_CHECKPOINTABLE_OBJECT_GRAPH")
    for key, fact in facts.items():
        entry = bundle.entries[key]
        assert (entry.dtype, [d.size for d in entry.shape.dim]) == (fact["dtype"], fact["shape"])
        values = bundle.array(key).reshape(fact["shape"])
        if fact["dtype_name"] == "bfloat16":
            values = codec.bfloat16_to_float32(values)
        assert digest_values(values) == fact["sha256"], key


def test_set_bytes_writes_a_checksum_the_reader_accepts(tmp_path: Path) -> None:
    bundle = read_bundle(_prefix("module_mixed"))
    key = "w32/.ATTRIBUTES/VARIABLE_VALUE"
    new = np.linspace(-1, 1, 512, dtype=np.float32)
    bundle.set_bytes(key, new.tobytes())
    write_bundle(bundle, tmp_path / "variables")
    again = read_bundle(tmp_path / "variables")
    np.testing.assert_array_equal(again.array(key), new)
    untouched = "counts/.ATTRIBUTES/VARIABLE_VALUE"
    assert bytes(again.data(untouched)) == bytes(read_bundle(_prefix("module_mixed")).data(untouched))
    with pytest.raises(BundleError, match="holds 2048 bytes"):
        bundle.set_bytes(key, b"\0" * 4)


@pytest.mark.parametrize("key", ["w64/.ATTRIBUTES/VARIABLE_VALUE", "_CHECKPOINTABLE_OBJECT_GRAPH"])
def test_corrupt_data_byte_is_caught(key: str, tmp_path: Path) -> None:
    prefix = _copy("module_mixed", tmp_path)
    entry = read_bundle(prefix).entries[key]
    shard = shard_path(prefix, 0, 1)
    data = bytearray(shard.read_bytes())
    data[entry.offset + entry.size - 1] ^= 0x10  # the last byte: a value, or a string's text
    shard.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"checksum mismatch for key '{key}'"):
        read_bundle(prefix)


def test_corrupt_string_length_is_caught(tmp_path: Path) -> None:
    prefix = _copy("module_mixed", tmp_path)
    entry = read_bundle(prefix).entries["_CHECKPOINTABLE_OBJECT_GRAPH"]
    shard = shard_path(prefix, 0, 1)
    data = bytearray(shard.read_bytes())
    data[entry.offset] ^= 0x01  # the first length varint
    shard.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="string lengths of key '_CHECKPOINTABLE_OBJECT_GRAPH'"):
        read_bundle(prefix)


def test_sliced_entry_is_refused(tmp_path: Path) -> None:
    prefix = _copy("module_mixed", tmp_path)

    def slice_w32(messages) -> None:
        entry = dict(messages)[b"w32/.ATTRIBUTES/VARIABLE_VALUE"]
        entry.slices.add().extent.add(start=0, length=16)

    _rewrite_index(prefix, slice_w32)
    with pytest.raises(BundleError, match=r"variables.index: key 'w32/.ATTRIBUTES/VARIABLE_VALUE' is "
                                          r"saved in 1 slices"):
        read_bundle(prefix)


def test_big_endian_is_refused(tmp_path: Path) -> None:
    prefix = _copy("module_mixed", tmp_path)
    _rewrite_index(prefix, lambda messages: setattr(messages[0][1], "endianness", 1))
    with pytest.raises(BundleError, match="big-endian"):
        read_bundle(prefix)


def test_size_not_matching_shape_is_refused(tmp_path: Path) -> None:
    prefix = _copy("module_mixed", tmp_path)
    _rewrite_index(prefix, lambda messages: dict(messages)[b"w32/.ATTRIBUTES/VARIABLE_VALUE"]
                   .shape.dim[0].__setattr__("size", 31))
    with pytest.raises(BundleError, match="holds 2048 bytes, but its dtype and shape need 1984"):
        read_bundle(prefix)


def test_missing_shard_is_named(tmp_path: Path) -> None:
    prefix = _copy("module_mixed", tmp_path)
    shard_path(prefix, 0, 1).unlink()
    with pytest.raises(BundleError, match="variables.data-00000-of-00001: cannot read"):
        read_bundle(prefix)


def test_two_shards(tmp_path: Path) -> None:
    # TensorFlow merges per-device bundles into one index over several shards (MergeBundles):
    # here every other tensor moves to a second shard.
    original = read_bundle(_prefix("module_mixed"))
    shards = [bytearray(), bytearray()]
    for number, (key, entry) in enumerate(original.entries.items()):
        moved = BundleEntryProto()
        moved.CopyFrom(entry)
        moved.shard_id = number % 2
        moved.offset = len(shards[moved.shard_id])
        shards[moved.shard_id] += original.data(key)
        original.entries[key] = moved
    original.header.num_shards = 2
    prefix = tmp_path / "variables"
    write_bundle(Bundle(str(prefix), original.header, original.entries, shards), prefix)
    assert shard_path(prefix, 1, 2).name == "variables.data-00001-of-00002"
    again = read_bundle(prefix)
    reference = read_bundle(_prefix("module_mixed"))
    assert {e.shard_id for e in again.entries.values()} == {0, 1}
    for key in reference.entries:
        assert bytes(again.data(key)) == bytes(reference.data(key))


@settings(max_examples=60)
@given(st.data())
def test_any_corrupt_byte_of_a_tensorflow_bundle_is_caught(tmp_path_factory, data) -> None:
    # Every byte of the shard is some tensor's (TensorFlow aligns nothing by default), and every
    # byte of the index but the footer's zero padding is under a checksum or is structure.
    prefix = _copy("module_mixed", tmp_path_factory.mktemp("corrupt"))
    index = Path(f"{prefix}.index")
    target = data.draw(st.sampled_from([shard_path(prefix, 0, 1), index]))
    content = bytearray(target.read_bytes())
    at = data.draw(st.integers(0, len(content) - 1))
    if target == index:
        handles = len(content[-48:-8].rstrip(b"\0"))  # then zero padding up to the magic number
        assume(not len(content) - 48 + handles <= at < len(content) - 8)
    content[at] ^= data.draw(st.integers(1, 255))
    target.write_bytes(bytes(content))
    with pytest.raises(BundleError, match="variables"):
        read_bundle(prefix)
