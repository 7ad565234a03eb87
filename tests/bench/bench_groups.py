"""Per-channel-group palettes against one palette per tensor: file size, output error, accuracy.

For each model, k and group size G (``-`` is one palette per tensor): ``compress`` with
``palettize=True`` and ``group_size=G``, the serialized palette form's size, and the model run by
TensorFlow on the digits test split. Output error is the RMS of (logits - original logits) over
the RMS of the original logits; accuracy is top-1 on the 360 test images. Needs TensorFlow:

    PYTHONPATH=. /work/tfvenv/bin/python tests/bench/bench_groups.py
    PYTHONPATH=. /work/tfvenv/bin/python tests/bench/bench_groups.py --k 4 16 --groups 0 4 8 16

``--spread S`` also runs ``cnn_digits.pb`` with its channels rescaled, the function unchanged:
each output channel c of conv2 and dense1 multiplied by s_c (log-uniform in [1/S, S], fixed
seed; kernel column and bias), and the next layer's input rows divided by s_c. ReLU and max
pooling commute with a positive per-channel scale, so the logits stay the same up to rounding;
the weights then differ in scale from channel to channel, as after folding batch normalisation.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from minigraph import compress, from_array, read_graph, to_array  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"


def logits_of(graph_bytes: bytes, images: np.ndarray) -> np.ndarray:
    """The model's logits for a batch, run single-threaded by TensorFlow."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(tf.compat.v1.GraphDef.FromString(graph_bytes), name="")
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1,
                                      inter_op_parallelism_threads=1)
    with tf.compat.v1.Session(graph=graph, config=config) as session:
        return session.run("logits:0", {"input:0": images})


def _scale(graph_def, name: str, factors: np.ndarray, axis: int) -> None:
    """Multiply a Const's slices along ``axis`` (-1: columns, 0: rows) by ``factors``."""
    node = next(node for node in graph_def.node if node.name == name)
    values = to_array(node.attr["value"].tensor)
    if axis == 0:
        values = values * np.resize(factors, values.shape[0])[:, None]
    else:
        values = values * factors
    node.attr["value"].tensor.CopyFrom(from_array(values.astype(np.float32)))


def rescaled_cnn(spread: float, seed: int = 0):
    """cnn_digits.pb with per-channel scales moved between layers (same function)."""
    graph_def = read_graph(FIXTURES / "cnn_digits.pb")
    rng = np.random.default_rng(seed)
    for layer, nxt, channels in (("conv2", "dense1", 32), ("dense1", "dense2", 64)):
        factors = np.exp(rng.uniform(-np.log(spread), np.log(spread), channels))
        _scale(graph_def, f"{layer}/{'Conv2D' if layer == 'conv2' else 'MatMul'}"
                          "/ReadVariableOp/resource", factors, -1)
        _scale(graph_def, f"{layer}/add/ReadVariableOp/resource", factors, -1)
        # dense1 reads the pooled [4, 4, 32] map flattened with the channel fastest.
        _scale(graph_def, f"{nxt}/MatMul/ReadVariableOp/resource", 1 / factors, 0)
    return graph_def


def measure(model, k: int, group: int | None, images: np.ndarray, labels: np.ndarray,
            reference: np.ndarray) -> dict:
    """Size, output error and accuracy of one palette form (``model``: file name or GraphDef)."""
    source = read_graph(FIXTURES / model) if isinstance(model, str) else model
    graph_def, _ = compress(source, n_clusters=k, palettize=True, group_size=group)
    data = graph_def.SerializeToString(deterministic=True)
    logits = logits_of(data, images)
    error = float(np.sqrt(np.mean((logits - reference) ** 2) / np.mean(reference ** 2)))
    return {"bytes": len(data), "error": error,
            "accuracy": float(np.mean(np.argmax(logits, axis=1) == labels))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["cnn_digits.pb", "mlp_digits.pb"])
    parser.add_argument("--k", nargs="+", type=int, default=[4, 16])
    parser.add_argument("--groups", nargs="+", type=int, default=[0, 4, 8, 16],
                        help="group sizes; 0 is one palette per tensor")
    parser.add_argument("--spread", type=float, default=0,
                        help="also run the CNN with channel scales spread over [1/S, S]")
    args = parser.parse_args()
    test = np.load(FIXTURES / "digits_test.npz")
    images, labels = test["X"].astype(np.float32), test["y"]
    print("| model | k | G | file bytes | output error (rel. RMS) | accuracy |")
    print("|---|---:|---:|---:|---:|---:|")
    models = [(model, read_graph(FIXTURES / model)) for model in args.models]
    if args.spread:
        models.append((f"cnn_digits.pb, channels x [1/{args.spread:g}, {args.spread:g}]",
                       rescaled_cnn(args.spread)))
    for title, graph_def in models:
        original = graph_def.SerializeToString(deterministic=True)
        reference = logits_of(original, images)
        accuracy = float(np.mean(np.argmax(reference, axis=1) == labels))
        print(f"| {title} | - | - | {len(original)} | 0 | {accuracy:.4f} |")
        for k in args.k:
            for group in args.groups:
                row = measure(graph_def, k, group or None, images, labels, reference)
                print(f"| {title} | {k} | {group or '-'} | {row['bytes']} | {row['error']:.4f} "
                      f"| {row['accuracy']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
