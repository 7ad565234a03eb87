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


def _graph_of(**arrays) -> GraphDef:
    graph_def = GraphDef()
    for name, (values, dtype) in arrays.items():
        node = graph_def.node.add(name=name, op="Const")
        node.attr["value"].tensor.CopyFrom(from_array(values, dtype))
    return graph_def


_RNG = np.random.default_rng(7)
# Narrow values at the top of their dtype's range beside wider values above it: a shared
# centroid can lie beyond the narrow type's largest finite value (65504 for half, 3.3895e38 for
# bfloat16, 3.4028e38 for float, all by hand from the formats' exponent and mantissa widths).
MIXED = {
    "half beside float": dict(
        n=((65504 - 64 * _RNG.integers(0, 60, 400)).astype(np.float64), "DT_HALF"),
        w=(65504 + _RNG.random(400) * 2e5, "DT_FLOAT")),
    "bfloat16 beside float": dict(
        n=(3.3895e38 - _RNG.random(400) * 1e37, "DT_BFLOAT16"),
        w=(3.3896e38 + _RNG.random(400) * 1.3e36, "DT_FLOAT")),
    "float beside double": dict(
        n=(3.4028e38 - _RNG.random(400) * 1e37, "DT_FLOAT"),
        w=(3.4028e38 + _RNG.random(400) * 1e38, "DT_DOUBLE")),
}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("k", [1, 2, 3, 8, 64])
@pytest.mark.parametrize("case", sorted(MIXED))
def test_global_codebook_over_mixed_dtypes_keeps_finite_values_finite_and_k_values(case, k):
    original = _graph_of(**MIXED[case])
    out, report = compress(original, n_clusters=k, global_clusters=True, min_n_weights=0)
    rows = {row.name: row for row in report.tensors}
    values = set()
    for name, ref in _consts(out).items():
        new = to_array(ref.tensor)
        assert np.isfinite(new).all(), f"{case}, k={k}: {name} got non-finite values"
        if rows[name].skipped is None:
            values |= _finite_distinct(new)
        else:  # left as it was
            assert ref.tensor == _consts(original)[name].tensor
    assert len(values) <= k
    # The wide tensor is always clustered; the narrow one unless its dtype holds no entry.
    assert rows["w"].skipped is None
    assert rows["n"].skipped in (None, f"no entry of the global codebook fits {rows['n'].dtype}")


def test_a_narrow_tensor_takes_the_nearest_entry_its_dtype_holds():
    # Half {-60000 ×200, 65504 ×200} beside float {70000 ×200}, k = 2. By hand, the optimum is
    # {-60000} | {65504, 70000}: SSE 400 × 2248² = 2.0e9, against 400 × 62752² = 1.6e12 for
    # {-60000, 65504} | {70000}. Its centroid 67752 is beyond half's 65504, so the half values
    # there take the only entry half holds, -60000; the float values keep 67752.
    half = np.repeat([-60000.0, 65504.0], 200)
    out, report = compress(_graph_of(n=(half, "DT_HALF"), w=(np.full(200, 70000.0), "DT_FLOAT")),
                           n_clusters=2, global_clusters=True, min_n_weights=0, method="optimal")
    assert to_array(_consts(out)["n"].tensor).tolist() == [-60000.0] * 400
    assert to_array(_consts(out)["w"].tensor).tolist() == [67752.0] * 200


def _padded(n_elements: int, stored: list[float], dtype: str = "DT_DOUBLE") -> GraphDef:
    field = "double_val" if dtype == "DT_DOUBLE" else "float_val"
    values = " ".join(f"{field}: {v}" for v in stored)
    return text_format.Parse(f"""node {{ name: 'pad' op: 'Const' attr {{ key: 'value' value {{
        tensor {{ dtype: {dtype} tensor_shape {{ dim {{ size: {n_elements} }} }} {values} }}
        }} }} }}""", GraphDef())


@pytest.mark.parametrize("global_clusters", [False, True])
def test_a_padded_list_declaring_gigabytes_is_left_as_stored(global_clusters):
    # 5 doubles declaring 2**28 elements: 2 GiB decoded from 54 stored bytes.
    graph_def = _padded(2**28, [1, 2, 3, 4, 5])
    out, report = compress(graph_def, n_clusters=2, global_clusters=global_clusters)
    (row,) = report.tensors
    assert row.skipped is not None and "would expand to 2147483648 bytes" in row.skipped
    assert out == graph_def


def test_a_padded_list_within_the_memory_rule_is_still_clustered():
    # 2**20 floats decode to 4 MiB: under the 16 MiB floor, whatever they store.
    out, report = compress(_padded(2**20, [1, 2, 3, 4, 5], "DT_FLOAT"), n_clusters=2)
    assert report.tensors[0].skipped is None
    assert len(_finite_distinct(to_array(_consts(out)["pad"].tensor))) == 2


@pytest.mark.parametrize("global_clusters", [False, True])
def test_values_beyond_the_engines_range_leave_that_tensor_alone_and_say_why(global_clusters):
    big = _RNG.standard_normal(300)
    big[5] = 1e200
    original = _graph_of(big=(big, "DT_DOUBLE"), fine=(_RNG.standard_normal(300), "DT_DOUBLE"))
    out, report = compress(original, n_clusters=4, global_clusters=global_clusters)
    rows = {row.name: row for row in report.tensors}
    assert "1e+200" in rows["big"].skipped and "1e+140" in rows["big"].skipped
    assert _consts(out)["big"].tensor == _consts(original)["big"].tensor
    assert rows["fine"].skipped is None
    assert len(_finite_distinct(to_array(_consts(out)["fine"].tensor))) == 4


@pytest.mark.filterwarnings("error")
def test_signalling_nans_pooled_into_a_float64_codebook_raise_no_warning():
    # 0x7F800001: a float32 signalling NaN (quiet bit clear); widening it raises "invalid".
    bits = np.arange(0x3F800000, 0x3F800000 + 300, dtype=np.uint32)
    bits[7] = 0x7F800001
    graph_def = GraphDef()
    node = graph_def.node.add(name="f", op="Const")
    node.attr["value"].tensor.CopyFrom(from_array(bits.view(np.float32)))
    node = graph_def.node.add(name="d", op="Const")
    node.attr["value"].tensor.CopyFrom(from_array(np.linspace(0, 1, 300)))
    out, _ = compress(graph_def, n_clusters=4, global_clusters=True)
    new = to_array(_consts(out)["f"].tensor)
    assert new.view(np.uint32)[7] == 0x7F800001


def test_compress_takes_a_bit_budget_by_keyword():
    # The values form counts ceil(log2 k) bits per weight: at most 2 on average.
    _, report = compress(read_graph(FIXTURES / "mlp_digits.pb"), bits_per_weight=2.0)
    clustered = report.clustered
    assert clustered and all(row.k is not None and row.distinct_after <= row.k
                             for row in clustered)
    weights = sum(row.elements for row in clustered)
    assert sum(row.elements * row.bits for row in clustered) <= 2.0 * weights
