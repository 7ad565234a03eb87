"""Bit budgets judged by real TensorFlow: accuracy, model-output error and file size.

Run by hand in a TensorFlow virtualenv: ``python -m pytest -m tensorflow tests/test_budget_tf.py``;
``python tests/test_budget_tf.py`` prints every figure the tests check (and more) as tables.
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


@pytest.mark.parametrize("model", DIGITS)
@pytest.mark.parametrize("bits, points", [(2.0, 0.01), (1.5, 0.03)])
def test_budgeted_digits_accuracy_and_file_size(model, bits, points, expected):
    facts = expected[model]
    graph_bytes, report = _variant(model, bits_per_weight=bits)
    judged = _judge(model, facts, graph_bytes)
    assert judged["accuracy"] >= facts["test_accuracy"] - points
    totals = report["totals"]
    assert totals["budget"]["average_bits_per_weight"] <= bits
    # The file: clustered weights at B bits plus everything else as it was in the original.
    clustered = [t for t in report["tensors"] if t["clustered"]]
    rest = len((FIXTURES / model).read_bytes()) - sum(t["bytes_before"] for t in clustered)
    decode_nodes = sum(t["bytes_after"] for t in clustered) - totals["budget"]["weights"] * bits / 8
    assert len(graph_bytes) <= rest + totals["budget"]["weights"] * bits / 8 + decode_nodes
    assert decode_nodes < 600 * len(clustered)  # per tensor: the decode nodes' own bytes


@pytest.mark.parametrize("model", TF_MODELS)
@pytest.mark.parametrize("k", [2, 4, 16])
def test_budget_beats_uniform_k_at_equal_size(model, k, expected):
    facts = expected[model]
    uniform_bytes, uniform_report = _variant(model, n_clusters=k)
    bits = _uniform_bits(uniform_report)
    budget_bytes, _ = _variant(model, bits_per_weight=bits)
    assert len(budget_bytes) <= len(uniform_bytes) + 64  # node overheads may differ a little
    assert _judge(model, facts, budget_bytes)["error"] < \
        _judge(model, facts, uniform_bytes)["error"]


@pytest.mark.parametrize("model", TF_MODELS)
def test_min_sqnr_30_holds_for_every_clustered_tensor(model, expected):
    _, report = _variant(model, min_sqnr=30.0)
    rows = [t for t in report["tensors"] if t["clustered"]]
    assert rows and all(t["sqnr_db"] is None or t["sqnr_db"] >= 30.0 for t in rows)


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
                ks = [t["k"] for t in report["tensors"] if t["clustered"]]
                print(f"| {model} | budget {objective} ks={ks} | "
                      f"{report['totals']['budget']['average_bits_per_weight']:.3f} | "
                      f"{got['bytes']} | {got['error']:.3g} | {got['accuracy']} |")
        for bits in (1.5, 2.0, 3.0, 4.0):
            for objective in budget.OBJECTIVES:
                graph_bytes, report = _with_objective(objective, model, bits)
                got = _judge(model, facts, graph_bytes)
                ks = [t["k"] for t in report["tensors"] if t["clustered"]]
                print(f"| {model} | B={bits} {objective} ks={ks} | "
                      f"{report['totals']['budget']['average_bits_per_weight']:.3f} | "
                      f"{got['bytes']} | {got['error']:.3g} | {got['accuracy']} |")


if __name__ == "__main__":
    main()
