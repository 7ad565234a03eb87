"""Reading, validating and writing GraphDef files."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from google.protobuf import text_format

from minigraph import GraphError, read_graph, write_graph
from minigraph.graph import iter_consts
from minigraph.pbfile import parse_graph, serialize_graph
from minigraph.schema import GraphDef, TensorProto

from conftest import FIXTURES, MODELS
from fuzz import attr_entry, const, ld, node, vi


@pytest.mark.parametrize("model", MODELS)
def test_binary_and_text_round_trips_are_lossless(model, tmp_path):
    original = read_graph(FIXTURES / model)
    write_graph(original, tmp_path / "copy.pb")
    write_graph(original, tmp_path / "copy.pbtxt")
    assert read_graph(tmp_path / "copy.pb") == original
    assert read_graph(tmp_path / "copy.pbtxt") == original
    assert (tmp_path / "copy.pbtxt").read_bytes().lstrip()[:4] in (b"node", b"libr", b"vers")


@pytest.mark.parametrize("model", MODELS)
def test_serialization_is_deterministic_and_parses_to_the_same_message(model):
    data = (FIXTURES / model).read_bytes()
    graph_def = parse_graph(data)
    again = serialize_graph(graph_def)
    assert serialize_graph(parse_graph(again)) == again
    assert GraphDef.FromString(again) == GraphDef.FromString(data)


def test_unknown_fields_survive_a_round_trip(tmp_path):
    graph_def = read_graph(FIXTURES / "mlp_digits.pb")
    # Field 999 (varint 42) in the GraphDef and field 998 (bytes) in the first node: fields a
    # newer TensorFlow might add. Tag = number << 3 | wire type.
    extra_graph = bytes([0xB8, 0x3E, 42])
    node_bytes = graph_def.node[0].SerializeToString() + bytes([0xB2, 0x3E, 3]) + b"new"
    patched = GraphDef.FromString(graph_def.SerializeToString() + extra_graph)
    patched.node[0].ParseFromString(node_bytes)
    write_graph(patched, tmp_path / "unknown.pb")
    data = (tmp_path / "unknown.pb").read_bytes()
    assert bytes([0xB8, 0x3E, 42]) in data and bytes([0xB2, 0x3E, 3]) + b"new" in data


def test_a_binary_file_with_a_text_name_and_a_text_file_with_a_binary_name(tmp_path):
    graph_def = read_graph(FIXTURES / "mlp_digits.pb")
    (tmp_path / "model.pb").write_text(text_format.MessageToString(graph_def))
    assert read_graph(tmp_path / "model.pb") == graph_def


@pytest.mark.parametrize("content, words", [
    (b"", ["empty"]),
    (b"\x0a\xff\xff\xff\xff\x0f", ["not a binary GraphDef"]),
    (b"node { name: 'a' op: 'Const' }\nnode { name: 'a' op: 'Const' }", ["'a'", "twice"]),
    (b"node { name: 'b' op: 'Identity' input: 'missing:0' }", ["'b'", "'missing:0'"]),
    (b"node { op: 'NoOp' }", ["no name"]),
    (b"node { name: 'c' }", ["'c'", "no op"]),
    (b"versions { producer: 3 }", ["no nodes"]),
    (b"this is not a graph {", ["not a text GraphDef"]),
])
def test_malformed_files_fail_with_one_clear_error(tmp_path, content, words):
    path = tmp_path / "bad.pb"
    path.write_bytes(content)
    with pytest.raises(GraphError) as info:
        read_graph(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    for word in words:
        assert word in message


def test_truncated_random_and_foreign_files_are_refused(tmp_path):
    data = (FIXTURES / "mlp_digits.pb").read_bytes()
    rng = np.random.default_rng(0)
    cases = {
        "truncated.pb": data[: len(data) // 2 + 3],
        "random.pb": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        # A TensorProto is a valid protobuf message, but not a GraphDef.
        "tensor.pb": TensorProto(dtype=1, tensor_content=b"\0" * 64).SerializeToString(),
        "digits.npz": (FIXTURES / "digits_test.npz").read_bytes(),
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(GraphError):
            read_graph(tmp_path / name)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(GraphError, match="nope.pb: cannot read"):
        read_graph(tmp_path / "nope.pb")


def test_write_is_atomic_and_leaves_no_temp_file_on_failure(tmp_path, monkeypatch):
    graph_def = read_graph(FIXTURES / "mlp_digits.pb")
    target = tmp_path / "out.pb"
    target.write_bytes(b"old")

    def no_room(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_room)
    with pytest.raises(GraphError, match="No space left"):
        write_graph(graph_def, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pb"]


def test_written_file_gets_the_usual_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_graph(read_graph(FIXTURES / "mlp_digits.pb"), tmp_path / "out.pb")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.pb").stat().st_mode) == 0o644


def test_unwritable_directory_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        target = tmp_path / "missing_dir" / "out.pb"  # root writes anywhere; a missing dir fails
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        target = tmp_path / "ro" / "out.pb"
    with pytest.raises(GraphError, match="cannot write"):
        write_graph(read_graph(FIXTURES / "mlp_digits.pb"), target)


def test_refuses_to_serialize_past_two_gib(monkeypatch):
    graph_def = read_graph(FIXTURES / "mlp_digits.pb")
    monkeypatch.setattr(type(graph_def), "ByteSize", lambda self: 2**31)
    with pytest.raises(GraphError, match="2 GiB"):
        serialize_graph(graph_def)


@pytest.mark.parametrize("model", MODELS)
def test_lifted_parse_equals_plain_parse_and_splicing_restores_the_bytes(model, monkeypatch):
    from minigraph import wire
    from minigraph.pbfile import parse_graph_lifted, serialize_spliced

    monkeypatch.setattr(wire, "LIFT_MIN_BYTES", 64)  # lift the fixtures' modest tensors too
    data = serialize_graph(read_graph(FIXTURES / model))
    graph_def, lifted = parse_graph_lifted(data)
    assert lifted, "every fixture has a Const of 64 bytes or more in tensor_content"
    assert all(len(marker) < 64 for marker in lifted)
    assert b"".join(serialize_spliced(graph_def, lifted)) == data
    for marker, view in lifted.items():
        assert bytes(view) in data and marker not in data
    for ref in iter_consts(graph_def):
        content = ref.tensor.tensor_content
        ref.tensor.tensor_content = bytes(lifted.get(content, content))
    assert graph_def == parse_graph(data)


def test_lifted_parse_of_bad_bytes_gives_the_plain_parse_errors():
    from minigraph.pbfile import parse_graph_lifted

    data = (FIXTURES / "cnn_digits.pb").read_bytes()
    for blob in (data[: len(data) // 2 + 3], b"\x0a\xff\xff\xff\xff\x0f", b""):
        with pytest.raises(GraphError):
            parse_graph_lifted(blob)


def _lifted_layouts() -> dict[str, bytes]:
    """Valid files in which protobuf drops a copy of a large tensor_content: it keeps the last
    of a repeated singular field, the last map entry of a key and the last member of a oneof."""
    rng = np.random.default_rng(0)
    n = 20_000  # 80 kB of float32: above the size from which payloads are read in place

    def tensor(content: bytes = b"") -> bytes:
        shape = ld(2, ld(2, vi(1, n)))  # TensorShapeProto.dim[0].size = n
        return vi(1, 1) + shape + (ld(4, content) if content else b"")  # DT_FLOAT

    def payload() -> bytes:
        return rng.standard_normal(n).astype(np.float32).tobytes()

    def value(tensor_bytes: bytes) -> bytes:
        return attr_entry(b"value", ld(8, tensor_bytes))

    return {
        "content twice": const(b"w", tensor(payload()) + ld(4, payload())),
        "tensor field twice": node(b"w", b"Const", attr_entry(
            b"value", ld(8, tensor(payload())) + ld(8, tensor(payload())))),
        "value entry twice": node(b"w", b"Const", value(tensor(payload())),
                                  value(tensor(payload()))),
        "oneof replaced": node(b"w", b"Const", attr_entry(
            b"value", ld(8, tensor(payload())) + ld(2, b"text"))) + const(b"k", tensor(payload())),
        "op changed after attrs": node(b"w", b"Const", value(tensor(payload())), ld(2, b"Identity"))
        + const(b"k", tensor(payload())),
    }


@pytest.mark.parametrize("layout", sorted(_lifted_layouts()))
def test_lifted_parse_and_splice_agree_with_protobuf_on_repeated_fields(layout):
    from minigraph.pbfile import parse_graph_lifted, serialize_spliced

    data = _lifted_layouts()[layout]
    plain = GraphDef.FromString(data)
    graph_def, lifted = parse_graph_lifted(data)
    spliced = b"".join(bytes(chunk) for chunk in serialize_spliced(graph_def, lifted))
    assert GraphDef.FromString(spliced) == plain


def test_a_parser_error_quoting_the_file_escapes_its_control_characters():
    data = b'node { name: "a\x1b[31mRED\r" op: "Const" attr { key: "value" value { tensor { ' \
           b'dtype: DT_FLOATY } } } }'
    with pytest.raises(GraphError) as caught:
        parse_graph(data, text=True)
    message = str(caught.value)
    assert message.isprintable() and r"a\x1b[31mRED\r" in message
