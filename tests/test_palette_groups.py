"""The grouped palette form (one palette row per group of output channels) without TensorFlow:
values through the numpy interpreter of tests/test_palette.py, round trips, recognition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigraph import ClusteringError, compress, from_array, read_graph, to_array
from minigraph.graph import check_graph, iter_consts
from minigraph.palette import expand, find_palettes, palettize
from minigraph.schema import GraphDef

from conftest import FIXTURES
from test_palette import _bits, _evaluate, _inner, _serialized

_FLOAT_VIEW = {"DT_FLOAT": ("<u4", "<f4"), "DT_DOUBLE": ("<u8", "<f8"), "DT_HALF": ("<u2", "<f2")}


def _graph(values: np.ndarray, dtype: str = "DT_FLOAT") -> GraphDef:
    graph_def = GraphDef()
    node = graph_def.node.add(name="w", op="Const", device="/device:CPU:0")
    tensor = from_array(values, dtype)
    node.attr["dtype"].type = tensor.dtype
    node.attr["value"].tensor.CopyFrom(tensor)
    graph_def.node.add(name="use", op="Identity", input=["w"]).attr["T"].type = tensor.dtype
    return graph_def


def _decoded(graph_def: GraphDef) -> np.ndarray:
    return _evaluate(list(graph_def.node), "w", False)[0]


def _const(graph_def: GraphDef, name: str) -> np.ndarray:
    node = next(node for node in graph_def.node if node.name == name)
    return to_array(node.attr["value"].tensor)


def test_palette_rows_per_group_padded_by_repeating_their_last_entry():
    # 6 channels in groups of 2: {1, 2}, {3, 4, 5}, {6} by hand, so k = 3 and rows
    # [1, 2, 2], [3, 4, 5], [6, 6, 6].
    values = np.array([[1, 2, 3, 4, 6, 6], [2, 2, 5, 3, 6, 6], [1, 1, 4, 4, 6, 6]], np.float32)
    graph_def = _graph(values)
    before = _serialized(graph_def)
    (info,) = palettize(graph_def, ["w"], group_size=2)
    assert (info.palettized, info.k, info.bits, info.groups, info.group_size) == \
           (True, 3, 8, 3, 2)
    assert _const(graph_def, f"{_inner(graph_def, 'w')}/palette").tolist() == \
        [[1, 2, 2], [3, 4, 5], [6, 6, 6]]
    assert _const(graph_def, f"{_inner(graph_def, 'w')}/indices").tolist() == [[0, 1, 0, 1, 0, 0], [1, 1, 2, 0, 0, 0],
                                                       [0, 0, 1, 1, 0, 0]]
    assert np.array_equal(_decoded(graph_def), values)
    check_graph(graph_def)
    assert find_palettes(graph_def) == [info]
    assert expand(graph_def) == ["w"] and _serialized(graph_def) == before


def test_packed_grouped_indices_decode_and_expand():
    # 2 bits per index: 16,000 indices take 4,000 bytes packed against 16,000 as uint8.
    rng = np.random.default_rng(3)
    values = (rng.integers(0, 4, size=(2000, 8)) + 10 * (np.arange(8) // 3)).astype(np.float32)
    graph_def = _graph(values)
    before = _serialized(graph_def)
    (info,) = palettize(graph_def, ["w"], group_size=3)
    assert (info.k, info.bits, info.groups) == (4, 2, 3)
    ops = {node.name.split("/")[-1]: node.op for node in graph_def.node}
    assert ops["lattice"] == "Reshape" and "indices" not in ops
    assert np.array_equal(_decoded(graph_def), values)
    assert expand(graph_def) == ["w"] and _serialized(graph_def) == before


@given(st.integers(1, 30), st.integers(2, 9), st.integers(1, 10),
       st.lists(st.integers(0, 2**16 - 1), min_size=1, max_size=12),
       st.sampled_from(["DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16"]))
def test_any_grouped_palette_decodes_bit_for_bit_and_expands_byte_for_byte(
        rows, channels, group, pool, dtype):
    patterns = np.resize(np.array(pool, np.uint64), rows * channels)
    if dtype == "DT_BFLOAT16":  # widened to float32, as minigraph's arrays hold bfloat16
        values = (patterns.astype(np.uint32) << 16).view("<f4")
    else:  # spread over the pattern space: NaN payloads, -0.0 and infinities come up
        width, kind = _FLOAT_VIEW[dtype]
        scale = {"<u4": 65537, "<u8": 281479271743489, "<u2": 1}[width]
        values = (patterns * np.uint64(scale)).astype(width).view(kind)
    values = values.reshape(rows, channels)
    graph_def = _graph(values, dtype)
    before = _serialized(graph_def)
    want = to_array(graph_def.node[0].attr["value"].tensor)
    (info,) = palettize(graph_def, ["w"], group_size=group)
    assert info.palettized and info.groups == (-(-channels // group) if channels > group else 1)
    got = _decoded(graph_def)
    assert got.shape == want.shape and np.array_equal(_bits(got), _bits(want))
    assert expand(graph_def) == ["w"] and _serialized(graph_def) == before


@pytest.mark.parametrize("model", ["mlp_digits.pb", "cnn_digits.pb"])
@pytest.mark.parametrize("k", [256, 16, 4])
@pytest.mark.parametrize("group", [4, 16])
def test_fixture_grouped_palette_equals_the_grouped_values_form(model, k, group):
    values_form, report = compress(read_graph(FIXTURES / model), n_clusters=k, group_size=group)
    names = [row.name for row in report.clustered]
    consts = {ref.name: to_array(ref.tensor) for ref in iter_consts(values_form)}
    palette_form, report = compress(read_graph(FIXTURES / model), n_clusters=k,
                                    group_size=group, palettize=True)
    check_graph(palette_form)
    for name in names:
        got, _ = _evaluate(list(palette_form.node), name, False)
        assert np.array_equal(_bits(got), _bits(consts[name])), name
    infos = {info.name: info for info in find_palettes(palette_form)}
    for row in report.clustered:
        info = infos[row.name]
        assert info.groups == row.groups and info.k <= k and row.palette_bits == info.bits
    expand(palette_form)
    assert _serialized(palette_form) == _serialized(values_form)


def test_a_changed_group_size_const_is_not_recognised():
    values = np.resize(np.arange(12, dtype=np.float32), (20, 12))
    graph_def = _graph(values)
    palettize(graph_def, ["w"], group_size=4)
    node = next(node for node in graph_def.node if node.name == f"{_inner(graph_def, 'w')}/group")
    node.attr["value"].tensor.CopyFrom(from_array(np.int64(3)))  # now the user's own subgraph
    changed = _serialized(graph_def)
    assert find_palettes(graph_def) == [] and expand(graph_def) == []
    assert _serialized(graph_def) == changed


def test_grouped_palettes_are_never_shared_and_bad_group_sizes_are_refused():
    graph_def = _graph(np.resize(np.arange(8, dtype=np.float32), (30, 8)))
    (info,) = palettize(graph_def, ["w"], shared=True, group_size=2)
    assert info.shared_palette is None and info.groups == 4
    with pytest.raises(ClusteringError, match="group_size"):
        palettize(_graph(np.zeros((3, 4), np.float32)), ["w"], group_size=0)


def test_file_pipeline_writes_grouped_palettes_and_expand_file_gives_the_values_form(tmp_path):
    from minigraph.compress import Options
    from minigraph.files import compress_file, expand_file

    source = str(FIXTURES / "cnn_digits.pb")
    compress_file(source, tmp_path / "values.pb", options=Options(n_clusters=16, group_size=8))
    result = compress_file(source, tmp_path / "palette.pb",
                           options=Options(n_clusters=16, group_size=8, palettize=True))
    assert result["verified"]
    grouped = [t for t in result["tensors"] if t["clustered"]]
    assert grouped and all(t["palette_bits"] and t["groups"] for t in grouped)
    expand_file(tmp_path / "palette.pb", tmp_path / "expanded.pb")
    assert (tmp_path / "expanded.pb").read_bytes() == (tmp_path / "values.pb").read_bytes()
