"""The 2016 tool's algorithm, reimplemented for measurement only (run under a TensorFlow virtualenv).

For every float Const with more than k=256 values: decode with ``tf.make_ndarray``; fit
``sklearn.cluster.KMeans(n_clusters=256, init="random", n_init=2, max_iter=300)`` on the values
as a column vector; replace each element by its centroid through ``predict`` called once PER
ELEMENT via ``np.vectorize`` (what made the tool slow); re-encode with ``tf.make_tensor_proto``.

A whole ~100 MB file takes well over an hour here, so the default mode measures pieces and
extrapolates linearly in element count:

    total ≈ t_import + t_read_parse + t_decode + t_encode + t_write
            + N · (t_fit / n_fit + t_predict / n_predict)

where N is the number of eligible elements in the file, t_fit the fit on the largest eligible
tensor of at most ``--fit-elements`` values (a whole 1024×4096 layer for the benchmark graph) and
t_predict the per-element predict on its first ``--predict-elements`` values. Decoding, encoding,
parsing and writing are cheap and measured on the whole file.

    $TF_PYTHON tests/bench/legacy_2016.py big.pb [--json-out legacy.json]
    $TF_PYTHON tests/bench/legacy_2016.py big.pb --full -o big.pb.legacy  # over an hour

Prints one JSON object (seconds, element counts, the formula) on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

N_CLUSTERS = 256
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _import_libraries() -> float:
    """Import TensorFlow, numpy and scikit-learn (the 2016 tool's start-up cost); return seconds."""
    start = time.perf_counter()
    global np, tf, KMeans
    import numpy as np  # noqa: F401
    import tensorflow as tf  # noqa: F401
    from sklearn.cluster import KMeans  # noqa: F401
    return time.perf_counter() - start


def _eligible(node) -> bool:
    """A float Const with more than k values (the 2016 rule, restricted to float dtypes)."""
    if node.op != "Const":
        return False
    tensor = node.attr["value"].tensor
    n = 1
    for dim in tensor.tensor_shape.dim:
        n *= dim.size
    return tf.dtypes.as_dtype(tensor.dtype).name in FLOAT_DTYPES and n > N_CLUSTERS


def fit(values):
    """KMeans on the values as a column vector, the 2016 settings."""
    return KMeans(n_clusters=N_CLUSTERS, init="random", n_init=2, max_iter=300,
                  random_state=0).fit(values.reshape(-1, 1))


def predict_per_element(kmeans, values):
    """Each element replaced by its centroid, one ``predict`` call per element (np.vectorize)."""
    centers = kmeans.cluster_centers_[:, 0]
    lookup = np.vectorize(lambda v: centers[kmeans.predict(np.array([[v]], dtype=values.dtype))[0]],
                          otypes=[values.dtype])
    return lookup(values)


def _read(path: str):
    start = time.perf_counter()
    with open(path, "rb") as handle:
        data = handle.read()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(data)
    return graph_def, len(data), time.perf_counter() - start


def _write(graph_def, path: str) -> float:
    start = time.perf_counter()
    with open(path, "wb") as handle:
        handle.write(graph_def.SerializeToString(deterministic=True))
    return time.perf_counter() - start


def run_full(path: str, out: str) -> dict:
    """Run the whole algorithm on every eligible Const and write the result; time each stage."""
    times = {"import": _import_libraries()}
    graph_def, size, times["read_parse"] = _read(path)
    times.update(decode=0.0, fit=0.0, predict=0.0, encode=0.0)
    n_elements = 0
    for node in graph_def.node:
        if not _eligible(node):
            continue
        tensor = node.attr["value"].tensor
        start = time.perf_counter()
        values = tf.make_ndarray(tensor)
        mid = time.perf_counter()
        times["decode"] += mid - start
        kmeans = fit(values.ravel())
        times["fit"] += time.perf_counter() - mid
        mid = time.perf_counter()
        new_values = predict_per_element(kmeans, values)
        times["predict"] += time.perf_counter() - mid
        mid = time.perf_counter()
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(new_values, dtype=tensor.dtype,
                                                                shape=values.shape))
        times["encode"] += time.perf_counter() - mid
        n_elements += values.size
        print(f"{node.name}: {values.size} values, {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)
    times["write"] = _write(graph_def, out)
    return {"mode": "full", "file": path, "file_bytes": size, "n_elements": n_elements,
            "seconds": times, "total_seconds": sum(times.values())}


def run_sample(path: str, fit_elements: int, predict_elements: int, scratch: str) -> dict:
    """Measure every stage, fit and per-element predict on a sample; extrapolate (module doc)."""
    times = {"import": _import_libraries()}
    graph_def, size, times["read_parse"] = _read(path)
    nodes = [node for node in graph_def.node if _eligible(node)]
    start = time.perf_counter()
    arrays = [tf.make_ndarray(node.attr["value"].tensor) for node in nodes]
    times["decode"] = time.perf_counter() - start
    n_elements = sum(values.size for values in arrays)
    fit_values = max((values for values in arrays if values.size <= fit_elements),
                     key=lambda values: values.size).ravel()
    start = time.perf_counter()
    kmeans = fit(fit_values)
    t_fit = time.perf_counter() - start
    sample = fit_values[:predict_elements]
    start = time.perf_counter()
    predict_per_element(kmeans, sample)
    t_predict = time.perf_counter() - start
    # Re-encode every tensor (values unchanged; the cost does not depend on them) and write.
    start = time.perf_counter()
    for node, values in zip(nodes, arrays, strict=True):
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(values, dtype=values.dtype,
                                                                shape=values.shape))
    times["encode"] = time.perf_counter() - start
    times["write"] = _write(graph_def, scratch)
    os.remove(scratch)
    fit_rate, predict_rate = t_fit / fit_values.size, t_predict / sample.size
    times["fit_extrapolated"] = fit_rate * n_elements
    times["predict_extrapolated"] = predict_rate * n_elements
    return {
        "mode": "sample", "file": path, "file_bytes": size, "n_tensors": len(nodes),
        "n_elements": n_elements,
        "measured": {"fit_seconds": t_fit, "fit_elements": int(fit_values.size),
                     "fit_iterations": int(kmeans.n_iter_),
                     "predict_seconds": t_predict, "predict_elements": int(sample.size),
                     "fit_us_per_element": fit_rate * 1e6,
                     "predict_us_per_element": predict_rate * 1e6},
        "seconds": times,
        "total_seconds": sum(times.values()),
        "formula": "import + read_parse + decode + encode + write + n_elements * "
                   "(fit_seconds / fit_elements + predict_seconds / predict_elements)",
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "numpy": np.__version__, "sklearn": __import__("sklearn").__version__},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="binary GraphDef")
    parser.add_argument("--full", action="store_true",
                        help="run everything (over an hour for 100 MB)")
    parser.add_argument("-o", "--output", help="output path for --full (default FILE.legacy)")
    parser.add_argument("--fit-elements", type=int, default=1024 * 4096,
                        help="fit on the largest eligible tensor of at most this many values")
    parser.add_argument("--predict-elements", type=int, default=100_000)
    parser.add_argument("--json-out", help="also write the JSON result here")
    args = parser.parse_args(argv)
    if args.full:
        result = run_full(args.file, args.output or args.file + ".legacy")
    else:
        result = run_sample(args.file, args.fit_elements, args.predict_elements,
                            args.file + f".legacy-scratch-{os.getpid()}")
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
