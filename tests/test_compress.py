"""compress(): what is clustered, what is left alone, and that nothing else changes."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from google.protobuf import text_format

from minigraph import (ClusteringError, DecodeError, compress, converge_weights, from_array,
                       read_graph, to_array)
from minigraph.graph import iter_consts
from minigraph.schema import GraphDef

from conftest import FIXTURES, MODELS

FLOAT_DTYPES = {"DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16"}


def _finite_distinct(values: np.ndarray) -> set[float]:
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    return set(flat[np.isfinite(flat)].tolist())


def _consts(graph_def: GraphDef) -> dict:
    return {ref.name: ref for ref in iter_consts(graph_def)}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("k", [16, 256])
def test_each_clustered_tensor_holds_at_most_k_values_and_keeps_dtype_and_shape(model, k):
    original = read_graph(FIXTURES / model)
    out, report = compress(original, n_clusters=k)
    before, after = _consts(original), _consts(out)
    rows = {row.name: row for row in report.tensors}
    assert sorted(rows) == sorted(before)
    for name, ref in after.items():
        old, new = before[name].tensor, ref.tensor
        assert (new.dtype, new.tensor_shape) == (old.dtype, old.tensor_shape)
        if rows[name].clustered:
            assert len(_finite_distinct(to_array(new))) <= k
            assert rows[name].distinct_after == len(_finite_distinct(to_array(new)))
            assert rows[name].distinct_before == len(_finite_distinct(to_array(old))) > k
        else:
            assert new == old, f"{name} was skipped ({rows[name].skipped}) but changed"


def test_input_message_is_not_modified():
    original = read_graph(FIXTURES / "mlp_digits.pb")
    snapshot = original.SerializeToString(deterministic=True)
    compress(original, n_clusters=4)
    assert original.SerializeToString(deterministic=True) == snapshot


@pytest.mark.parametrize("model", MODELS)
def test_everything_but_clustered_values_is_byte_identical(model):
    original = read_graph(FIXTURES / model)
    out, report = compress(original, n_clusters=8)
    clustered = {row.name for row in report.clustered}
    assert clustered, "every fixture has something to cluster at k=8"
    # Blank the clustered tensors' payload in both; then the graphs must serialize identically.
    for graph_def in (original, out):
        for ref in iter_consts(graph_def):
            if ref.name in clustered:
                ref.tensor.ClearField("tensor_content")
                for field in ("float_val", "double_val", "half_val"):
                    ref.tensor.ClearField(field)
    assert out.SerializeToString(deterministic=True) == \
        original.SerializeToString(deterministic=True)


def test_skip_reasons_on_the_encodings_fixture():
    _, report = compress(read_graph(FIXTURES / "encodings.pb"), n_clusters=16,
                         whitelisted=["f64_*"])
    reasons = {row.name: row.skipped for row in report.tensors}
    assert reasons["i32_content"] == "not float (DT_INT32)"
    assert reasons["c64_content"] == "not float (DT_COMPLEX64)"
    assert reasons["str_vector"] == "not float (DT_STRING)"
    assert reasons["f64_content"] == reasons["f64_double_val"] == "whitelisted"
    assert reasons["f32_scalar"] == "too small (1 < 256 weights)"
    assert reasons["f32_splat"] == "stored as one value (splat)"
    assert reasons["f16_splat"] == "stored as one value (splat)"
    assert reasons["f32_short_list_large"] == "≤ 16 distinct values"  # [1, 2, 3] padded
    for name in ("f32_content", "f32_special", "f16_content", "f16_half_val", "bf16_content",
                 "bf16_half_val", "f32_float_val_full"):
        assert reasons[name] is None, name


def test_nan_and_infinities_stay_where_they_were():
    original = read_graph(FIXTURES / "encodings.pb")
    out, _ = compress(original, n_clusters=4)
    old = to_array(_consts(original)["f32_special"].tensor).reshape(-1)
    new = to_array(_consts(out)["f32_special"].tensor).reshape(-1)
    special = ~np.isfinite(old)
    assert special.sum() >= 4
    assert np.array_equal(old[special].view(np.uint32), new[special].view(np.uint32))
    assert np.isfinite(new[~special]).all()


def test_library_function_consts_are_clustered():
    original = read_graph(FIXTURES / "tf2_functions.pb")
    out, report = compress(original, n_clusters=8)
    library = [row for row in report.clustered if row.function is not None]
    assert len(library) == 3
    consts = _consts(out)
    for row in library:
        assert len(_finite_distinct(to_array(consts[row.name].tensor))) <= 8


def test_whitelist_matches_library_nodes_by_full_and_bare_name():
    graph_def = read_graph(FIXTURES / "tf2_functions.pb")
    full = next(r.name for r in iter_consts(graph_def) if r.name.endswith("then_weights"))
    for pattern in (full, "cond/then_weights", "*_weights"):
        _, report = compress(graph_def, n_clusters=8, whitelisted=[pattern])
        skipped = {row.name for row in report.tensors if row.skipped == "whitelisted"}
        assert full in skipped, pattern


def test_hand_computed_error_figures():
    # 100 each of 0, 1, 9, 10 with k=2: clusters {0,1} -> 0.5 and {9,10} -> 9.5, every value
    # off by exactly 0.5: MSE 0.25, max error 0.5, SQNR 10 log10(mean(x^2)/0.25).
    values = np.repeat(np.array([0, 1, 9, 10], np.float32), 100)
    graph_def = GraphDef()
    node = graph_def.node.add(name="w", op="Const")
    node.attr["value"].tensor.CopyFrom(from_array(values))
    out, report = compress(graph_def, n_clusters=2)
    row = report.tensors[0]
    assert sorted(set(to_array(out.node[0].attr["value"].tensor).tolist())) == [0.5, 9.5]
    assert row.mse == pytest.approx(0.25)
    assert row.max_abs_error == pytest.approx(0.5)
    assert row.sqnr_db == pytest.approx(10 * np.log10((0 + 1 + 81 + 100) / 4 / 0.25))
    assert (row.distinct_before, row.distinct_after) == (4, 2)


@pytest.mark.parametrize("model", MODELS)
def test_global_codebook_bounds_the_whole_graph(model):
    original = read_graph(FIXTURES / model)
    out, report = compress(original, n_clusters=8, global_clusters=True)
    consts = _consts(out)
    pooled: set[float] = set()
    for row in report.clustered:
        pooled |= _finite_distinct(to_array(consts[row.name].tensor))
    assert report.clustered and len(pooled) <= 8


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("global_clusters", [False, True])
def test_compressing_an_output_again_changes_nothing(model, global_clusters):
    once, _ = compress(read_graph(FIXTURES / model), n_clusters=16,
                       global_clusters=global_clusters)
    twice, report = compress(once, n_clusters=16, global_clusters=global_clusters)
    assert not report.clustered
    assert twice.SerializeToString(deterministic=True) == once.SerializeToString(deterministic=True)


def test_same_input_and_options_give_identical_bytes_whatever_the_workers():
    graph_def = read_graph(FIXTURES / "cnn_digits.pb")
    results = {compress(graph_def, n_clusters=32, workers=w, init=init)[0].SerializeToString(
        deterministic=True) for w in (1, 2) for init in ("random", "random")}
    assert len(results) == 1


@pytest.mark.parametrize("kwargs, words", [
    ({"n_clusters": 0}, "n_clusters"), ({"n_clusters": 2.5}, "n_clusters"),
    ({"min_n_weights": -1}, "min_n_weights"), ({"method": "fast"}, "method"),
    ({"init": "zeros"}, "init"),
])
def test_bad_options_raise_before_any_work(kwargs, words):
    with pytest.raises(ClusteringError, match=words):
        compress(GraphDef(), **kwargs)


def test_inconsistent_tensor_error_names_the_node():
    graph_def = text_format.Parse("""node { name: 'w' op: 'Const' attr { key: 'value' value {
        tensor { dtype: DT_FLOAT tensor_shape { dim { size: 300 } } tensor_content: "abc" } } } }""",
                                  GraphDef())
    with pytest.raises(DecodeError, match="node 'w'.*3 bytes, expected 1200"):
        compress(graph_def)


def test_converge_weights_keeps_the_2016_signature_and_logs_not_prints(caplog, capsys):
    graph_def = read_graph(FIXTURES / "mlp_digits.pb")
    with caplog.at_level(logging.INFO, logger="minigraph"):
        out = converge_weights(graph_def, ["dense3/MatMul/ReadVariableOp/resource"], False, 16)
    assert isinstance(out, GraphDef) and out is not graph_def
    consts = _consts(out)
    assert len(_finite_distinct(to_array(consts["dense1/MatMul/ReadVariableOp/resource"].tensor))) <= 16
    assert consts["dense3/MatMul/ReadVariableOp/resource"].tensor == \
        _consts(graph_def)["dense3/MatMul/ReadVariableOp/resource"].tensor
    assert "dense1/MatMul/ReadVariableOp/resource" in caplog.text
    assert capsys.readouterr() == ("", "")
    # min_n_weights=None: no minimum, so a 128-value bias is clustered at k=16.
    out = converge_weights(graph_def, n_clusters=16, verbose=False)
    assert len(_finite_distinct(to_array(_consts(out)["dense1/add/ReadVariableOp/resource"].tensor))) <= 16


@pytest.mark.parametrize("model", MODELS)
def test_streamed_output_equals_applying_the_changes_and_serializing(model, tmp_path):
    from minigraph.compress import Options, plan_compression
    from minigraph.files import serialize_compressed
    from minigraph.pbfile import serialize_graph, write_atomic
    expected_bytes = serialize_graph(compress(read_graph(FIXTURES / model), n_clusters=8)[0])
    graph_def = read_graph(FIXTURES / model)
    # An unknown top-level field after the nodes must survive the splice too.
    graph_def.MergeFromString(bytes([0xB8, 0x3E, 42]))
    expected_bytes += bytes([0xB8, 0x3E, 42])
    _, changes = plan_compression(graph_def, Options(n_clusters=8))
    assert changes
    write_atomic(tmp_path / "out.pb", serialize_compressed(graph_def, changes)[0])
    assert (tmp_path / "out.pb").read_bytes() == expected_bytes


@pytest.mark.parametrize("model", MODELS)
def test_output_from_a_lifted_parse_equals_the_plain_one(model, tmp_path, monkeypatch):
    from minigraph import wire
    from minigraph.compress import Options, plan_compression
    from minigraph.files import serialize_compressed
    from minigraph.pbfile import parse_graph_lifted, serialize_graph, write_atomic

    monkeypatch.setattr(wire, "LIFT_MIN_BYTES", 64)
    data = (FIXTURES / model).read_bytes()
    expected_bytes = serialize_graph(compress(read_graph(FIXTURES / model), n_clusters=8)[0])
    graph_def, lifted = parse_graph_lifted(data)
    report, changes = plan_compression(graph_def, Options(n_clusters=8), lifted=lifted)
    write_atomic(tmp_path / "out.pb", serialize_compressed(graph_def, changes, lifted=lifted)[0])
    assert (tmp_path / "out.pb").read_bytes() == expected_bytes
    assert report.clustered
