"""The LevelDB-format table: round trips, TensorFlow's own files, corruption caught."""

from __future__ import annotations

import gzip
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigraph.errors import BundleError
from minigraph.table import read_table, write_table

from conftest import FIXTURES

SAVEDMODELS = FIXTURES / "savedmodels"
items_strategy = st.dictionaries(st.binary(max_size=40), st.binary(max_size=200), max_size=60).map(
    lambda d: sorted(d.items()))


@given(items_strategy, st.sampled_from([64, 512, 262144]), st.sampled_from([1, 2, 16]))
def test_round_trip(items, block_size, interval) -> None:
    data = write_table(items, block_size=block_size, restart_interval=interval)
    assert read_table(data, "t") == items


@given(items_strategy.filter(bool), st.data())
def test_any_corrupt_byte_is_an_error_or_harmless_padding(items, data) -> None:
    table = bytearray(write_table(items, block_size=256))
    at = data.draw(st.integers(0, len(table) - 1))
    table[at] ^= data.draw(st.integers(1, 255))
    footer_start = len(table) - 48
    try:
        got = read_table(bytes(table), "t.index")
    except BundleError as exc:
        assert str(exc).startswith("t.index: ")
        return
    # Only the footer's zero padding after the two handles is not covered by a checksum.
    assert at >= footer_start and got == items


def test_keys_must_increase() -> None:
    with pytest.raises(BundleError, match="strictly increasing"):
        write_table([(b"b", b""), (b"a", b"")])


def test_hand_built_block() -> None:
    # Two keys sharing the prefix "ab", one restart point, then trailer and footer, laid out by
    # hand from LevelDB's doc/table_format.md.
    data = write_table([(b"abc", b"1"), (b"abd", b"22")])
    block = b"\x00\x03\x01abc1" + b"\x02\x01\x02d22" + struct.pack("<II", 0, 1)
    assert data.startswith(block + b"\x00")
    assert data[-8:] == struct.pack("<Q", 0xDB4775248B80FB57)


def test_snappy_block_is_refused() -> None:
    table = bytearray(write_table([(b"k", b"v")]))
    block_end = 5 + 4 + 4  # one entry of 5 bytes, one restart, the count
    table[block_end] = 1  # compression type: Snappy; fix the checksum so only that is wrong
    from minigraph.crc32c import crc32c, mask
    table[block_end + 1:block_end + 5] = struct.pack("<I", mask(crc32c(bytes(table[:block_end + 1]))))
    with pytest.raises(BundleError, match="Snappy"):
        read_table(bytes(table), "t.index")


def test_bad_magic() -> None:
    with pytest.raises(BundleError, match="magic"):
        read_table(bytes(64), "t.index")


def test_tensorflow_multi_block_index_round_trips() -> None:
    # An index TensorFlow wrote for 7000 variables: past 256 KiB, so two data blocks.
    data = gzip.decompress((SAVEDMODELS / "many_variables.index.gz").read_bytes())
    items = read_table(data, "many_variables.index")
    assert len(items) == 7002
    assert write_table(items) == data
