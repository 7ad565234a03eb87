"""Bit budgets judged by real TensorFlow: accuracy, model-output error and file size.

Run by hand in a TensorFlow virtualenv: ``python -m pytest -m tensorflow tests/test_budget_tf.py``;
``python tests/test_budget_tf.py`` prints every figure the tests check (and more) as tables;
``python tests/test_budget_tf.py --exhaustive mlp_digits.pb 2.0`` (or ``k=4``: the bits of
uniform k = 4) tries every per-tensor k among powers of two.
Golden facts are TensorFlow's: the originals' accuracies in expected.json and the outputs the
original graphs give when TensorFlow runs them here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # conftest, when run as a script

from minigraph import budget, read_graph  # noqa: E402
from minigraph.compress import Options, compress_in_place  # noqa: E402

from conftest import FIXTURES  # noqa: E402

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # read when TensorFlow is first imported
pytestmark = pytest.mark.tensorflow
TF_MODELS = ("mlp_digits.pb", "cnn_digits.pb", "tf2_functions.pb")
DIGITS = ("mlp_digits.pb", "cnn_digits.pb")


def _run(graph_bytes: bytes, feeds: dict, fetch: str) -> np.ndarray:
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(tf.compat.v1.GraphDef.FromString(graph_bytes), name="")
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1,
                                      inter_op_parallelism_threads=1)
    with tf.compat.v1.Session(graph=graph, config=config) as session:
        return session.run(fetch, {k: np.asarray(v, np.float32) for k, v in feeds.items()})


def _feeds(model: str, facts: dict) -> tuple[dict, str, np.ndarray | None]:
    """Inputs, the output to compare and the labels (digits: the whole test split)."""
    if model in DIGITS:
        data = np.load(FIXTURES / facts["test_data"])
        return {"input:0": data["X"]}, "logits:0", data["y"]
    return facts["inputs"], facts["output_names"][0], None


def _variant(model: str, **options) -> tuple[bytes, dict]:
    """Palette-form bytes and the report's dict for the given options."""
    graph_def = read_graph(FIXTURES / model)
    report = compress_in_place(graph_def, Options(palettize=True, **options))
    return graph_def.SerializeToString(deterministic=True), report.to_dict()


def _judge(model: str, facts: dict, graph_bytes: bytes) -> dict:
    """Relative output error against the original (sum of squares ratio) and accuracy."""
    feeds, fetch, labels = _feeds(model, facts)
    original = _run((FIXTURES / model).read_bytes(), feeds, fetch)
    got = _run(graph_bytes, feeds, fetch)
    error = float(np.sum((got - original) ** 2) / np.sum(original ** 2))
    accuracy = None if labels is None else float(np.mean(np.argmax(got, axis=1) == labels))
    return {"error": error, "accuracy": accuracy, "bytes": len(graph_bytes)}


def _uniform_bits(report: dict, palette: bool = True) -> float:
    """Average bits per weight of a uniform-k run, counted as the budget counts them."""
    rows = [t for t in report["tensors"] if t["clustered"]]
    spent = sum(budget.index_bits(t["distinct_after"], t["elements"], palette)
                + 8 * 4 * t["distinct_after"] for t in rows)  # float32 palettes
    return spent / sum(t["elements"] for t in rows)


def _with_objective(objective: str, model: str, bits: float) -> tuple[bytes, dict]:
    saved = budget.DEFAULT_OBJECTIVE
    budget.DEFAULT_OBJECTIVE = objective
    try:
        return _variant(model, bits_per_weight=bits)
    finally:
        budget.DEFAULT_OBJECTIVE = saved


# Measured (python tests/test_budget_tf.py and an exhaustive search over k in {2, 4, 8} x
# {2, 4, 8} x {2 .. 256}): no per-tensor choice of k fits the MLP within 1 point at 2 bits
# (best 94.7%, k = 4, 2, 16) or 3 points at 1.5 bits (best 90.8%): its two 8192-weight
# layers cannot both have 2-bit indices once the palettes are paid for. The per-group palettes
# the budget also weighs (8 or 32 channels) are not chosen there: the MLP's runs are unchanged.
_UNREACHABLE = pytest.mark.xfail(strict=True, reason="no per-tensor k reaches it on the MLP")


@pytest.mark.parametrize("model, bits, points", [
    pytest.param("mlp_digits.pb", 2.0, 0.01, marks=_UNREACHABLE),
    pytest.param("mlp_digits.pb", 1.5, 0.03, marks=_UNREACHABLE),
    ("cnn_digits.pb", 2.0, 0.01), ("cnn_digits.pb", 1.5, 0.03)])
def test_budgeted_digits_accuracy(model, bits, points, expected):
    facts = expected[model]
    graph_bytes, _ = _variant(model, bits_per_weight=bits)
    assert _judge(model, facts, graph_bytes)["accuracy"] >= facts["test_accuracy"] - points


def _payload_bits(n: int, k: int, bits: int) -> int:
    """Index and palette bits of a float32 tensor, by hand from the layout: uint8 indices at 8
    bits, else bits-wide fields packed 64 // bits to an int64 word."""
    indices = 8 * n if bits == 8 else 64 * -(-n // (64 // bits))
    return indices + 32 * k


@pytest.mark.parametrize("model", DIGITS)
@pytest.mark.parametrize("bits", [1.5, 2.0, 4.0])
def test_budgeted_file_is_the_rest_plus_budgeted_payload_plus_decode_nodes(model, bits):
    graph_bytes, report = _variant(model, bits_per_weight=bits)
    clustered = [t for t in report["tensors"] if t["clustered"]]
    # The budget holds for the packed layout at each tensor's width. Tensors of up to 65,536
    # weights may be written with uint8 indices instead where the file is then smaller (fewer
    # decode nodes): more index bytes than budgeted, fewer bytes in all.
    modelled = sum(_payload_bits(t["elements"], t["k"], t["bits"]) for t in clustered)
    assert modelled <= bits * sum(t["elements"] for t in clustered)
    # Everything but the clustered Consts is as it was; each palettized tensor is its
    # payload plus the decode nodes' bytes, which the budget does not count (0.5 to 1.5 KB
    # per tensor, measured).
    rest = len((FIXTURES / model).read_bytes()) - sum(t["bytes_before"] for t in clustered)
    assert len(graph_bytes) <= rest + sum(t["bytes_after"] for t in clustered)
    written = sum(_payload_bits(t["elements"], t["k"], t["palette_bits"]) for t in clustered)
    decode = sum(t["bytes_after"] for t in clustered) - written / 8
    assert 0 < decode <= 2600 * len(clustered)


@pytest.mark.parametrize("model", TF_MODELS)
@pytest.mark.parametrize("k", [2, 4, 16])
def test_budget_is_no_worse_than_uniform_k_at_equal_size(model, k, expected):
    # At uniform k = 2**b the exact allocation of the relative objective is that same
    # uniform choice on every fixture (measured), so equal error is what is reached here.
    facts = expected[model]
    uniform_bytes, uniform_report = _variant(model, n_clusters=k)
    bits = _uniform_bits(uniform_report)
    budget_bytes, _ = _variant(model, bits_per_weight=bits)
    assert len(budget_bytes) <= len(uniform_bytes) + 64  # node overheads may differ a little
    assert _judge(model, facts, budget_bytes)["error"] <= \
        _judge(model, facts, uniform_bytes)["error"] * (1 + 1e-6)


@pytest.mark.parametrize("model", DIGITS)
def test_relative_objective_gives_lower_output_error_than_weighted(model, expected):
    # Why "relative" is the default: on both digits models, at every budget measured.
    facts = expected[model]
    for bits in (1.5, 2.0, 3.0, 4.0):
        errors = {objective: _judge(model, facts, _with_objective(objective, model, bits)[0])
                  ["error"] for objective in budget.OBJECTIVES}
        assert errors["relative"] <= errors["weighted"] * (1 + 1e-6), bits


@pytest.mark.parametrize("model", TF_MODELS)
def test_min_sqnr_30_holds_for_every_clustered_tensor(model, expected):
    _, report = _variant(model, min_sqnr=30.0)
    rows = [t for t in report["tensors"] if t["clustered"]]
    assert rows and all(t["sqnr_db"] is None or t["sqnr_db"] >= 30.0 for t in rows)


def _choice(report: dict) -> str:
    """``ks=[...]``, and ``G=[...]`` (channels per palette, - for one) where any is grouped."""
    rows = [t for t in report["tensors"] if t["clustered"]]
    text = f"ks={[t['k'] for t in rows]}"
    if any(t["group_size"] for t in rows):
        text += " G=[" + ", ".join(str(t["group_size"] or "-") for t in rows) + "]"
    return text


def main() -> None:
    import json

    expected = json.loads((FIXTURES / "expected.json").read_text())
    print("| model | variant | bits/weight | file bytes | output error | accuracy |")
    print("|---|---|---:|---:|---:|---:|")
    for model in TF_MODELS:
        facts = expected[model]
        base = _judge(model, facts, (FIXTURES / model).read_bytes())
        print(f"| {model} | original | 32 | {base['bytes']} | 0 | {base['accuracy']} |")
        for k in (2, 4, 16):
            graph_bytes, report = _variant(model, n_clusters=k)
            bits = _uniform_bits(report)
            got = _judge(model, facts, graph_bytes)
            print(f"| {model} | uniform k={k} | {bits:.3f} | {got['bytes']} | "
                  f"{got['error']:.3g} | {got['accuracy']} |")
            for objective in budget.OBJECTIVES:
                graph_bytes, report = _with_objective(objective, model, bits)
                got = _judge(model, facts, graph_bytes)
                print(f"| {model} | budget {objective} {_choice(report)} | "
                      f"{report['totals']['budget']['average_bits_per_weight']:.3f} | "
                      f"{got['bytes']} | {got['error']:.3g} | {got['accuracy']} |")
        for bits in (1.5, 2.0, 4.0):
            graph_bytes, report = _variant(model, bits_per_weight=bits)
            clustered = [t for t in report["tensors"] if t["clustered"]]
            rest = len((FIXTURES / model).read_bytes()) - sum(t["bytes_before"] for t in clustered)
            weights = sum(t["elements"] for t in clustered)
            print(f"| {model} | file at B={bits}: {len(graph_bytes)} bytes; budget line "
                  f"(rest {rest} + {weights} weights x B/8) {rest + weights * bits / 8:.0f} | | | | |")
        for bits in (1.5, 2.0, 3.0, 4.0):
            for objective in budget.OBJECTIVES:
                graph_bytes, report = _with_objective(objective, model, bits)
                got = _judge(model, facts, graph_bytes)
                print(f"| {model} | B={bits} {objective} {_choice(report)} | "
                      f"{report['totals']['budget']['average_bits_per_weight']:.3f} | "
                      f"{got['bytes']} | {got['error']:.3g} | {got['accuracy']} |")


def exhaustive(model: str, target: str) -> None:
    """Every per-tensor choice of k among 2, 4, ..., 256 that fits a budget, five best by
    output error and by accuracy. ``target``: bits per weight, or "k=K" for the bits of a
    uniform k = K run (the budget at equal size)."""
    import itertools
    import json

    facts = json.loads((FIXTURES / "expected.json").read_text())[model]
    if target.startswith("k="):
        uniform_bytes, uniform_report = _variant(model, n_clusters=int(target[2:]))
        bits = _uniform_bits(uniform_report)
        judged = _judge(model, facts, uniform_bytes)
        print(f"{model} uniform {target}: {bits:.4f} bits, {len(uniform_bytes)} bytes, "
              f"output error {judged['error']:.3g}, accuracy {judged['accuracy']}")
    else:
        bits = float(target)
    n = sum(t["clustered"] for t in _variant(model, n_clusters=2)[1]["tensors"])
    choose, found = budget.choose, []
    try:
        for ks in itertools.product([2 ** b for b in range(1, 9)], repeat=n):
            budget.choose = lambda units, ks=ks, **_: (list(ks), {"palette_form": True})
            graph_bytes, report = _variant(model, bits_per_weight=bits)
            if report["totals"]["budget"]["average_bits_per_weight"] <= bits + 1e-12:
                judged = _judge(model, facts, graph_bytes)
                found.append((judged["error"], judged["accuracy"], ks, len(graph_bytes)))
    finally:
        budget.choose = choose
    for name, key in (("output error", lambda f: f[0]), ("accuracy", lambda f: -(f[1] or 0))):
        print(f"  best by {name} within {bits:.4f} bits:")
        for error, accuracy, ks, size in sorted(found, key=key)[:5]:
            print(f"    ks={ks} {size} bytes, output error {error:.3g}, accuracy {accuracy}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--exhaustive"]:
        exhaustive(sys.argv[2], sys.argv[3])
    else:
        main()
