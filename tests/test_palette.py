"""The palette form without TensorFlow: packing, round trips, recognition, and a numpy interpreter
of the decode ops (TensorFlow's semantics, written out here) checking values bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import text_format
from hypothesis import given
from hypothesis import strategies as st

from minigraph import DecodeError, GraphError, compress, from_array, read_graph, to_array
from minigraph import pbfile
from minigraph.compress import Options, plan_compression
from minigraph.files import serialize_compressed
from minigraph.graph import check_graph, iter_consts
from minigraph.packing import bits_for, pack_indices, palette_of, unpack_indices
from minigraph.palette import MARKER, expand, find_palettes, palette_parts, palettize
from minigraph.schema import GraphDef, NodeDef, TensorProto

from conftest import FIXTURES, MODELS

# Output arg names of each op, from TensorFlow's op registry (tensorflow/core/ops/array_ops.cc,
# bitwise_ops.cc, math_ops.cc): a function body must name outputs "node:<arg>:0".
OUTPUT_ARG = {"Const": "output", "Cast": "y", "RightShift": "z", "BitwiseAnd": "z",
              "GatherV2": "output", "Reshape": "output", "Range": "output", "FloorDiv": "z",
              "FloorMod": "z", "Mul": "z", "Add": "z"}
# DataType numbers (tensorflow/core/framework/types.proto) to numpy, for the interpreter.
NUMPY = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 9: "<i8", 14: "<f4", 19: "<f2"}


def _inner(graph_def: GraphDef, name: str) -> str:
    """The prefix of a palettized tensor's inner nodes: the marker's second entry (version 2)."""
    node = next(n for n in graph_def.node if n.name == name)
    tag, base, _ = node.attr[MARKER].list.s
    assert tag == b"minigraph palette 2"
    return base.decode()


def _serialized(graph_def: GraphDef) -> bytes:
    return graph_def.SerializeToString(deterministic=True)


def _bits(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values)
    return values.view(f"u{values.dtype.itemsize}")


# ---------------------------------------------------------------- a numpy interpreter of the ops

def _evaluate(nodes: list[NodeDef], name: str, in_function: bool) -> tuple[np.ndarray, int]:
    """Value and DataType of node ``name``'s output 0, computing its inputs as TensorFlow would.

    Checks what TensorFlow checks at import: attrs matching input dtypes, output arg names.
    """
    by_name = {node.name: node for node in nodes}
    memo: dict[str, tuple[np.ndarray, int]] = {}

    def edge(text: str) -> tuple[np.ndarray, int]:
        parts = text.split(":")
        node = by_name[parts[0]]
        if in_function:
            assert len(parts) == 3 and parts[1] == OUTPUT_ARG[node.op] and parts[2] == "0", text
        else:
            assert len(parts) == 1 or parts[1] == "0", text
        return run(node)

    def run(node: NodeDef) -> tuple[np.ndarray, int]:
        if node.name not in memo:
            memo[node.name] = step(node, [edge(e) for e in node.input if not e.startswith("^")])
        return memo[node.name]

    def step(node: NodeDef, args: list) -> tuple[np.ndarray, int]:
        attr = node.attr
        if node.op in ("Const", "HostConst"):
            assert attr["dtype"].type == attr["value"].tensor.dtype
            return to_array(attr["value"].tensor), attr["dtype"].type
        if node.op == "Cast":
            assert args[0][1] == attr["SrcT"].type
            return args[0][0].astype(NUMPY[attr["DstT"].type]), attr["DstT"].type
        if node.op in ("RightShift", "BitwiseAnd", "FloorDiv", "FloorMod", "Mul", "Add"):
            (x, tx), (y, ty) = args
            assert tx == ty == attr["T"].type
            # RightShift: arithmetic for signed types (tensorflow/core/kernels/cwise_ops.h);
            # FloorDiv/FloorMod round toward minus infinity, as numpy's // and % do. All six
            # broadcast numpy's way (tensorflow/core/util/bcast.h): trailing axes aligned.
            operation = {"RightShift": np.right_shift, "BitwiseAnd": np.bitwise_and,
                         "FloorDiv": np.floor_divide, "FloorMod": np.mod, "Mul": np.multiply,
                         "Add": np.add}[node.op]
            np.broadcast_shapes(x.shape, y.shape)  # TensorFlow refuses what numpy refuses
            out = operation(x, y)
            assert out.dtype == x.dtype, "no type promotion in TensorFlow"
            return out, tx
        if node.op == "Range":
            (start, t1), (limit, t2), (delta, t3) = args
            assert t1 == t2 == t3 == attr["Tidx"].type
            return np.arange(start, limit, delta, dtype=NUMPY[t1]), t1
        if node.op == "GatherV2":
            (params, tp), (indices, ti), (axis, ta) = args
            assert (tp, ti, ta) == (attr["Tparams"].type, attr["Tindices"].type, attr["Taxis"].type)
            assert ti in (3, 9), "GatherV2 takes int32 or int64 indices only"
            assert indices.min(initial=0) >= 0 and indices.max(initial=0) < params.shape[0]
            assert "batch_dims" not in attr, "GatherV2 has no batch_dims in TF 1.15"
            return np.take(params, indices, axis=int(axis)), tp
        if node.op == "Reshape":
            (x, tx), (shape, ts) = args
            assert (tx, ts) == (attr["T"].type, attr["Tshape"].type)
            assert list(shape).count(-1) <= 1  # one dimension may be inferred
            return x.reshape(tuple(int(d) for d in shape)), tx
        raise AssertionError(f"unexpected op {node.op}")

    return run(by_name[name])


def _scope_nodes(graph_def: GraphDef, function: str | None) -> list[NodeDef]:
    if function is None:
        return list(graph_def.node)
    return next(list(f.node_def) for f in graph_def.library.function
                if f.signature.name == function)


def _values_form(model: str, k: int, shared: bool) -> tuple[GraphDef, list[str]]:
    out, report = compress(read_graph(FIXTURES / model), n_clusters=k, global_clusters=shared)
    return out, [row.name for row in report.tensors if row.clustered]


# ---------------------------------------------------------------- packing

def _reference_pack(labels: list[int], bits: int, p: int) -> list[int]:
    words = [0] * (-(-len(labels) // p))
    for i, label in enumerate(labels):
        words[i // p] |= label << ((i % p) * bits)
    return [w - (1 << 64) if w >= 1 << 63 else w for w in words]  # as int64


@given(data=st.data())
@pytest.mark.parametrize("bits", range(1, 17))
def test_packing_matches_a_plain_reference_for_every_width(bits, data):
    n = data.draw(st.integers(0, 200))
    p = data.draw(st.integers(1, 64 // bits))
    labels = data.draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=n, max_size=n))
    words = pack_indices(np.array(labels, dtype=np.int64), bits, p)
    assert words.dtype == np.int64
    assert words.tolist() == _reference_pack(labels, bits, p)
    assert unpack_indices(words, bits, n, p).tolist() == labels


def test_default_words_hold_as_many_indices_as_fit():
    # 64 // b by hand: 1→64, 3→21, 5→12, 7→9, 16→4.
    for bits, p in [(1, 64), (3, 21), (5, 12), (7, 9), (16, 4)]:
        assert pack_indices(np.zeros(p * 3 + 1, np.int64), bits).size == 4


def test_bits_per_index_is_ceil_log2_k():
    assert [bits_for(k) for k in (1, 2, 3, 4, 5, 16, 17, 32, 256, 257, 65536)] == \
           [1, 1, 2, 2, 3, 4, 5, 5, 8, 9, 16]


@given(st.lists(st.integers(0, 40), min_size=1, max_size=50),
       st.lists(st.integers(0, 200_002), max_size=3))
def test_palette_of_equals_numpy_unique_even_for_values_the_sample_misses(values, rare_at):
    # Large enough that only a strided sample is searched first; rare patterns, once each.
    patterns = np.resize(np.array(values, dtype=np.uint32) * 1000, 200_003)
    patterns[rare_at] = 123457 + np.arange(len(rare_at), dtype=np.uint32)
    palette, labels = palette_of(patterns, 1 << 16)
    expected, inverse = np.unique(patterns, return_inverse=True)
    assert palette.tolist() == expected.tolist()
    assert np.array_equal(labels, inverse.reshape(-1))
    assert palette_of(patterns, expected.size - 1)[1] is None


def test_palette_of_without_a_telling_16_bit_window_still_finds_every_pattern():
    # 0, 1 and 2**31 differ in bits 0 and 31 only: no 16 consecutive bits tell all three apart.
    patterns = np.resize(np.array([0, 1, 1 << 31, 1], dtype=np.uint32), 300_001)
    palette, labels = palette_of(patterns, 1 << 16)
    assert palette.tolist() == [0, 1, 1 << 31]
    assert np.array_equal(labels, np.resize([0, 1, 2, 1], 300_001))


# ---------------------------------------------------------------- fixtures: round trip and values

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("k", [256, 16, 5, 2])
@pytest.mark.parametrize("shared", [False, True])
def test_fixture_round_trip_values_and_idempotence(model, k, shared):
    graph_def, names = _values_form(model, k, shared)
    values_form = _serialized(graph_def)
    consts = {ref.name: (ref.function, to_array(ref.tensor)) for ref in iter_consts(graph_def)}
    infos = palettize(graph_def, names, shared=shared)
    assert [info.name for info in infos] == names and all(info.palettized for info in infos)
    check_graph(graph_def)
    for info in infos:
        function, values = consts[info.name]
        node_name = info.name if function is None else info.name[len(function) + 1:]
        got, _ = _evaluate(_scope_nodes(graph_def, function), node_name, function is not None)
        assert got.shape == values.shape and np.array_equal(_bits(got), _bits(values)), info.name
    palettized = _serialized(graph_def)
    assert palettize(graph_def, names, shared=shared) == infos
    assert _serialized(graph_def) == palettized
    assert [info.name for info in find_palettes(graph_def)] == \
           [name for name in consts if name in set(names)]
    assert sorted(expand(graph_def)) == sorted(names)
    assert _serialized(graph_def) == values_form


def test_library_function_consts_use_function_output_names():
    graph_def, names = _values_form("tf2_functions.pb", 16, False)
    library = [name for name in names if "/" in name and name.split("/")[0].startswith(
        ("while_body", "cond_true", "cond_false"))]
    assert len(library) == 3
    infos = palettize(graph_def, library)
    assert all(info.function is not None and info.palettized for info in infos)
    bare = [name.split("/", 1)[1] for name in library]
    edges = [edge for f in graph_def.library.function for node in f.node_def for edge in node.input
             if node.name in bare or node.name.startswith("minigraph/p")]
    assert len(edges) >= 12 and all(edge.count(":") == 2 for edge in edges)


def test_packed_indices_inside_a_function():
    graph_def = _graph("""library { function { signature { name: 'f' output_arg { name: 'y' } }
        node_def { name: 'use' op: 'Identity' input: 'w:output:0' } ret { key: 'y' value: 'use:output:0' }
        } }""")
    node = graph_def.library.function[0].node_def.add(name="w", op="Const")
    values = (np.arange(5000) % 3).astype(np.float32)
    node.attr["dtype"].type = 1
    node.attr["value"].tensor.CopyFrom(from_array(values))
    before = _serialized(graph_def)
    (info,) = palettize(graph_def, ["f/w"])
    assert info.palettized and info.function == "f" and info.bits == 2
    nodes = list(graph_def.library.function[0].node_def)
    assert "Range" in {n.op for n in nodes}
    got, _ = _evaluate(nodes, "w", True)
    assert np.array_equal(got, values)
    check_graph(graph_def)
    assert expand(graph_def) == ["f/w"] and _serialized(graph_def) == before


def test_sizes_match_the_hand_calculation_for_the_mlp():
    # dense1 and dense2 kernels have 8192 weights, dense3's 640.
    for k, index_bytes in [(256, 8192), (16, 8192 // 16 * 8), (5, -(-8192 // 21) * 8),
                           (2, 8192 // 64 * 8)]:
        graph_def, names = _values_form("mlp_digits.pb", k, False)
        palettize(graph_def, names)
        base = _inner(graph_def, "dense1/MatMul/ReadVariableOp/resource")
        node = next(n for n in graph_def.node if n.name in (f"{base}/indices", f"{base}/words"))
        assert len(node.attr["value"].tensor.tensor_content) == index_bytes, k


# ---------------------------------------------------------------- hand-built graphs

def _graph(text: str) -> GraphDef:
    return text_format.Parse(text, GraphDef())


def _with_const(values: np.ndarray, dtype: str, *, op: str = "Const", name: str = "w",
                extra: str = "") -> GraphDef:
    graph_def = _graph(f"node {{ name: 'ctl' op: 'NoOp' }} {extra}"
                       f"node {{ name: 'use' op: 'Identity' input: '{name}' input: '^{name}' }}")
    node = graph_def.node.add(name=name, op=op, device="/device:CPU:0")
    node.input.append("^ctl")
    tensor = from_array(values, dtype)
    node.attr["dtype"].type = tensor.dtype
    node.attr["value"].tensor.CopyFrom(tensor)
    node.attr["_class"].list.s.append(b"loc:@w")
    return graph_def


SPECIAL32 = [0x7FC00000, 0x7FC00001, 0xFFC00000, 0x7F800000, 0xFF800000, 0x80000000, 0, 1,
             0x3F800000]


@pytest.mark.parametrize("dtype, patterns, repeat", [
    ("DT_FLOAT", SPECIAL32, 30), ("DT_HALF", [0x7E00, 0x7E01, 0xFC00, 0x8000, 0x0001, 0x3C00], 7),
    ("DT_BFLOAT16", [0x7FC0, 0x7FC1, 0xFF80, 0x8000, 0x0001, 0x3F80], 50),
    ("DT_DOUBLE", [0x7FF8000000000001, 0xFFF0000000000000, 1 << 63, 5], 3)])
def test_nonfinite_values_kept_bit_for_bit(dtype, patterns, repeat):
    width = {"DT_FLOAT": "<u4", "DT_DOUBLE": "<u8"}.get(dtype, "<u2")
    bits = np.array(patterns * repeat, dtype=width)
    if dtype == "DT_BFLOAT16":  # minigraph's arrays hold bfloat16 widened to float32
        values = (bits.astype(np.uint32) << 16).view("<f4")
    else:
        values = bits.view({"DT_FLOAT": "<f4", "DT_DOUBLE": "<f8", "DT_HALF": "<f2"}[dtype])
    graph_def = _with_const(values, dtype)
    before = _serialized(graph_def)
    (info,) = palettize(graph_def, ["w"])
    assert info.palettized and info.k == len(set(patterns))
    got, _ = _evaluate(list(graph_def.node), "w", False)
    assert np.array_equal(_bits(got), _bits(to_array(from_array(values, dtype))))
    assert expand(graph_def) == ["w"] and _serialized(graph_def) == before


def test_control_inputs_device_and_hostconst_carried_and_restored():
    graph_def = _with_const(np.arange(300, dtype=np.float32) % 7, "DT_FLOAT", op="HostConst")
    before = _serialized(graph_def)
    palettize(graph_def, ["w"])
    base = _inner(graph_def, "w")
    new = [node for node in graph_def.node if node.name == "w" or node.name.startswith(base)]
    assert len(new) > 3
    for node in new:
        assert node.device == "/device:CPU:0"
        if node.op == "Const":
            assert list(node.input) == ["^ctl"]
    check_graph(graph_def)
    expand(graph_def)
    assert _serialized(graph_def) == before


def test_inner_names_never_collide_with_existing_nodes():
    graph_def = _with_const(np.arange(256, dtype=np.float32) % 3, "DT_FLOAT",
                            extra="node { name: 'minigraph/p0/palette' op: 'NoOp' } "
                                  "node { name: 'minigraph/p1/cast' op: 'NoOp' } ")
    before = _serialized(graph_def)
    palettize(graph_def, ["w"])
    check_graph(graph_def)  # names still unique
    assert [n.op for n in graph_def.node
            if n.name in ("minigraph/p0/palette", "minigraph/p1/cast")] == ["NoOp"] * 2
    assert _inner(graph_def, "w") == "minigraph/p2"  # the first prefix none of whose names is taken
    assert expand(graph_def) == ["w"] and _serialized(graph_def) == before


def test_a_users_own_gather_subgraph_is_left_alone():
    graph_def = _graph("""
        node { name: 'p' op: 'Const' attr { key: 'dtype' value { type: DT_FLOAT } }
               attr { key: 'value' value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 2 } }
               float_val: 1 float_val: 2 } } } }
        node { name: 'i' op: 'Const' attr { key: 'dtype' value { type: DT_UINT8 } }
               attr { key: 'value' value { tensor { dtype: DT_UINT8 tensor_shape { dim { size: 3 } }
               int_val: 0 int_val: 1 int_val: 1 } } } }
        node { name: 'a' op: 'Const' attr { key: 'dtype' value { type: DT_INT32 } }
               attr { key: 'value' value { tensor { dtype: DT_INT32 tensor_shape { } } } } }
        node { name: 'c' op: 'Cast' input: 'i' attr { key: 'SrcT' value { type: DT_UINT8 } }
               attr { key: 'DstT' value { type: DT_INT32 } } }
        node { name: 'w' op: 'GatherV2' input: 'p' input: 'c' input: 'a'
               attr { key: 'Tparams' value { type: DT_FLOAT } } }""")
    before = _serialized(graph_def)
    assert find_palettes(graph_def) == [] and expand(graph_def) == []
    # Even carrying our marker, copied from a real palette, it is not taken for one.
    real = _with_const(np.arange(300, dtype=np.float32) % 5, "DT_FLOAT")
    palettize(real, ["w"])
    marker = next(n for n in real.node if n.name == "w").attr[MARKER]
    graph_def.node[-1].attr[MARKER].CopyFrom(marker)
    before = _serialized(graph_def)
    assert find_palettes(graph_def) == [] and expand(graph_def) == [] and not \
        palette_parts(graph_def)
    assert _serialized(graph_def) == before


def test_a_palette_whose_inner_node_has_another_reader_is_not_expanded():
    graph_def = _with_const(np.arange(300, dtype=np.float32) % 5, "DT_FLOAT")
    palettize(graph_def, ["w"])
    graph_def.node.add(name="spy", op="Identity", input=[f"{_inner(graph_def, 'w')}/zero"])
    changed = _serialized(graph_def)
    assert find_palettes(graph_def) == [] and expand(graph_def) == []
    assert _serialized(graph_def) == changed


def test_a_tampered_index_word_is_not_recognised():
    graph_def = _with_const(np.arange(3000, dtype=np.float32) % 5, "DT_FLOAT")
    palettize(graph_def, ["w"])
    base = _inner(graph_def, "w")
    words = next(n for n in graph_def.node if n.name == f"{base}/words").attr["value"].tensor
    content = bytearray(words.tensor_content)
    content[-1] |= 0x80  # a bit in the unused top of the last word
    words.tensor_content = bytes(content)
    assert find_palettes(graph_def) == []


def test_tensors_that_cannot_be_palettized_stay_as_values_with_a_reason():
    many = np.arange(70000, dtype=np.float32)  # 70,000 distinct values: more than 16 bits
    graph_def = _with_const(many, "DT_FLOAT")
    graph_def.node.add(name="s", op="Const").attr["value"].tensor.CopyFrom(
        text_format.Parse("dtype: DT_FLOAT tensor_shape { dim { size: 500 } } float_val: 1",
                          TensorProto()))
    both = graph_def.node.add(name="both", op="Const")  # tensor_content and a typed list
    both.attr["value"].tensor.CopyFrom(from_array(np.arange(300, dtype=np.float32) % 3))
    both.attr["value"].tensor.float_val.append(7.0)
    before = _serialized(graph_def)
    infos = palettize(graph_def, ["w", "s", "use", "both"])
    assert [info.palettized for info in infos] == [False] * 4
    assert "16 bits" in infos[0].reason and infos[0].shape == (70000,)
    assert "splat" in infos[1].reason and "not a Const" in infos[2].reason
    assert "typed value list" in infos[3].reason
    assert _serialized(graph_def) == before
    with pytest.raises(GraphError, match="'nope'"):
        palettize(graph_def, ["nope"])


def test_shared_palette_is_one_const_per_dtype_and_frame():
    graph_def = _graph("node { name: 'ctl' op: 'NoOp' }")
    for name, values, control in [("a", np.arange(300) % 4, None), ("b", np.arange(300) % 6, None),
                                  ("c", np.arange(300) % 5, "^ctl"),
                                  ("c2", np.arange(300) % 5, "^ctl")]:
        node = graph_def.node.add(name=name, op="Const", input=[control] if control else [])
        node.attr["dtype"].type = 1
        node.attr["value"].tensor.CopyFrom(from_array(values.astype(np.float32), "DT_FLOAT"))
    before = _serialized(graph_def)
    infos = palettize(graph_def, ["a", "b", "c", "c2"], shared=True)
    shared = [info.shared_palette for info in infos]
    assert shared[0] == shared[1] and shared[2] == shared[3] and shared[0] != shared[2]
    assert [info.k for info in infos] == [6, 6, 5, 5]
    palettes = [n for n in graph_def.node if n.name in set(shared)]
    assert [list(n.input) for n in palettes] == [[], ["^ctl"]]
    assert palette_parts(graph_def) >= set(shared) | {"a", "b", "c", "c2"}
    left = palettize(graph_def, [shared[0]])  # a shared palette is no tensor of its own
    assert not left[0].palettized and "part of a palette" in left[0].reason
    for info, values in zip(infos, [np.arange(300) % 4, np.arange(300) % 6, np.arange(300) % 5,
                                    np.arange(300) % 5], strict=False):
        got, _ = _evaluate(list(graph_def.node), info.name, False)
        assert np.array_equal(got, values.astype(np.float32))
    assert sorted(expand(graph_def)) == ["a", "b", "c", "c2"]
    assert _serialized(graph_def) == before


@pytest.mark.parametrize("values", [
    np.float32(2.5), np.array([7.0], np.float32), np.full((3, 1, 2), -0.0, np.float32),
    (np.arange(700) % 2).astype(np.int32).reshape(7, 100), np.arange(40) % 3 == 0,
    (np.arange(900) % 3 + 1j).astype(np.complex64), np.arange(600, dtype=np.uint8) % 200,
    np.arange(70000, dtype=np.float16)])  # float16: 30,000+ patterns, 16 bits
def test_any_fixed_size_dtype_and_shape_round_trips(values):
    graph_def = _with_const(values, None)
    before = _serialized(graph_def)
    (info,) = palettize(graph_def, ["w"])
    assert info.palettized and info.shape == np.shape(values)
    got, _ = _evaluate(list(graph_def.node), "w", False)
    assert got.shape == np.shape(values) and got.tobytes() == np.asarray(values).tobytes()
    assert expand(graph_def) == ["w"] and _serialized(graph_def) == before


def test_a_zero_size_tensor_stays_as_it_is():
    graph_def = _with_const(np.zeros((3, 0), np.float32), "DT_FLOAT")
    (info,) = palettize(graph_def, ["w"])
    assert not info.palettized and "empty" in info.reason


def test_an_inconsistent_tensor_is_an_error_naming_its_node():
    graph_def = _with_const(np.arange(300, dtype=np.float32), "DT_FLOAT")
    graph_def.node[-1].attr["value"].tensor.tensor_content = b"\0" * 7
    with pytest.raises(DecodeError, match="node 'w'.*7 bytes"):
        palettize(graph_def, ["w"])


@pytest.mark.parametrize("shared", [False, True])
def test_palette_parts_cover_every_new_const(shared):
    graph_def, names = _values_form("cnn_digits.pb", 16, shared)
    before = {ref.name for ref in iter_consts(graph_def)}
    palettize(graph_def, names, shared=shared)
    parts = palette_parts(graph_def)
    for ref in iter_consts(graph_def):
        assert (ref.name in parts) != (ref.name in before and ref.name not in names), ref.name


@pytest.mark.parametrize("garbage", [[b"minigraph palette 1", b"", b"\xff\xff"],
                                     [b"minigraph palette 1", b"\xff", b""], [b"other"]])
def test_a_damaged_marker_is_ignored(garbage):
    graph_def = _with_const(np.arange(3000, dtype=np.float32) % 5, "DT_FLOAT")
    palettize(graph_def, ["w"])
    final = next(n for n in graph_def.node if n.name == "w")
    del final.attr[MARKER].list.s[:]
    final.attr[MARKER].list.s.extend(garbage)
    assert find_palettes(graph_def) == [] and expand(graph_def) == []


@pytest.mark.parametrize("bits", range(1, 17))
def test_packing_of_no_and_one_index(bits):
    assert pack_indices(np.zeros(0, np.int64), bits).size == 0
    assert unpack_indices(np.zeros(0, np.int64), bits, 0).size == 0
    top = (1 << bits) - 1
    words = pack_indices(np.array([top]), bits)
    assert words.tolist() == _reference_pack([top], bits, 64 // bits)
    assert unpack_indices(words, bits, 1).tolist() == [top]


@pytest.mark.parametrize("shared", [False, True])
def test_values_given_for_a_lifted_graph_expand_to_the_written_values_form(shared, tmp_path):
    # The CLI's path: large payloads stay in the file's bytes (markers in the message), the
    # plan's new values go straight to palettize, untouched payloads are spliced back in.
    data = (FIXTURES / "cnn_digits.pb").read_bytes()
    options = Options(n_clusters=16, global_clusters=shared)
    graph_def, lifted = pbfile.parse_graph_lifted(data)
    assert lifted, "cnn_digits.pb has a payload large enough to be lifted"
    _, changes = plan_compression(graph_def, options, lifted=lifted)
    pbfile.write_atomic(tmp_path / "values.pb",
                        serialize_compressed(graph_def, changes, lifted=lifted)[0])
    graph_def, lifted = pbfile.parse_graph_lifted(data)
    _, changes = plan_compression(graph_def, options, lifted=lifted)
    given = {ref.name: values for ref, values in changes}
    gone = {ref.tensor.tensor_content for ref, _ in changes}
    infos = palettize(graph_def, list(given), shared=shared, values=given)
    assert all(info.palettized for info in infos)
    kept = {marker: view for marker, view in lifted.items() if marker not in gone}
    palette_form = GraphDef.FromString(b"".join(pbfile.serialize_spliced(graph_def, kept)))
    assert sorted(expand(palette_form)) == sorted(given)
    assert _serialized(palette_form) == (tmp_path / "values.pb").read_bytes()


def test_given_values_must_match_the_tensor():
    graph_def = _with_const(np.arange(300, dtype=np.float32) % 3, "DT_FLOAT")
    with pytest.raises(DecodeError, match="node 'w'.*float64"):
        palettize(graph_def, ["w"], values={"w": np.zeros(300)})


def test_palette_form_survives_text_format_and_is_deterministic():
    graph_def, names = _values_form("mlp_digits.pb", 5, False)
    values_form = _serialized(graph_def)
    twin = GraphDef.FromString(values_form)
    palettize(graph_def, names)
    palettize(twin, names)
    assert _serialized(twin) == _serialized(graph_def)
    text = pbfile.serialize_graph(graph_def, text=True)
    parsed = pbfile.parse_graph(text, text=True)
    assert [info.name for info in find_palettes(parsed)] == names
    expand(parsed)
    assert _serialized(parsed) == values_form


@pytest.mark.parametrize("model, options", [
    ("tf2_functions.pb", dict(n_clusters=4, min_n_weights=16)),
    ("cnn_digits.pb", dict(n_clusters=4, group_size=8))])
def test_palettes_of_the_first_version_still_expand_to_the_values_form(model, options, tmp_path):
    # Written by the minigraph of commit c77e2d0 (inner nodes NAME/<tag>); today's writer names
    # them minigraph/p<i>/<tag>. The values form has not changed between the two.
    from minigraph.files import compress_file, expand_file

    name = f"{model[:-3]}.k4{'.g8' if 'group_size' in options else ''}.pb"
    old = FIXTURES / "palette_v1" / name
    infos = find_palettes(read_graph(old))
    assert len(infos) >= 3 and all(info.palettized for info in infos)
    compress_file(FIXTURES / model, tmp_path / "values.pb", options=Options(**options))
    expand_file(old, tmp_path / "expanded.pb")
    assert (tmp_path / "expanded.pb").read_bytes() == (tmp_path / "values.pb").read_bytes()
    # Palettizing the old form again changes nothing: its palettes are recognised as such.
    compress_file(old, tmp_path / "again.pb", options=Options(palettize=True, **options))
    assert (tmp_path / "again.pb").read_bytes() == old.read_bytes()

