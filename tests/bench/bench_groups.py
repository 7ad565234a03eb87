"""Per-channel-group palettes against one palette per tensor: file size, output error, accuracy.

For each model, k and group size G (``-`` is one palette per tensor): ``compress`` with
``palettize=True`` and ``group_size=G``, the serialized palette form's size, and the model run by
TensorFlow on the digits test split. Output error is the RMS of (logits - original logits) over
the RMS of the original logits; accuracy is top-1 on the 360 test images. Needs TensorFlow:

    PYTHONPATH=. /work/tfvenv/bin/python tests/bench/bench_groups.py
    PYTHONPATH=. /work/tfvenv/bin/python tests/bench/bench_groups.py --k 4 16 --groups 0 4 8 16
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

from minigraph import compress, read_graph  # noqa: E402

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


def measure(model: str, k: int, group: int | None, images: np.ndarray, labels: np.ndarray,
            reference: np.ndarray) -> dict:
    """Size, output error and accuracy of one palette form."""
    graph_def, _ = compress(read_graph(FIXTURES / model), n_clusters=k, palettize=True,
                            group_size=group)
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
    args = parser.parse_args()
    test = np.load(FIXTURES / "digits_test.npz")
    images, labels = test["X"].astype(np.float32), test["y"]
    print("| model | k | G | file bytes | output error (rel. RMS) | accuracy |")
    print("|---|---:|---:|---:|---:|---:|")
    for model in args.models:
        original = (FIXTURES / model).read_bytes()
        reference = logits_of(original, images)
        accuracy = float(np.mean(np.argmax(reference, axis=1) == labels))
        print(f"| {model} | - | - | {len(original)} | 0 | {accuracy:.4f} |")
        for k in args.k:
            for group in args.groups:
                row = measure(model, k, group or None, images, labels, reference)
                print(f"| {model} | {k} | {group or '-'} | {row['bytes']} | {row['error']:.4f} "
                      f"| {row['accuracy']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
