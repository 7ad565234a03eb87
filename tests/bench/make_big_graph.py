"""Write a ~100 MB frozen-style GraphDef (dense 1024→4096→4096→1024) with minigraph's own classes.

Benchmark input only: no TensorFlow is needed to make it, yet the graph imports and runs in real
TensorFlow (``import_graph_def``; feed ``input:0``, fetch ``output:0``).

    python tests/bench/make_big_graph.py [OUT] [--seed 0] [--scale 1]

OUT defaults to ``tests/bench/big.pb`` (ignored by git). ``--scale S`` divides every layer width
by S (S=4 gives 256→1024→1024→256, ~6 MB) for quick runs. The same seed and scale always give
byte-identical output (numpy Generator per layer, deterministic serialization).

Weights imitate trained ones: per element, 90% Laplace(0, 0.01) and 10% Normal(0, 0.1) — a sharp
peak at zero with heavier tails — and biases Normal(0, 0.01).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from minigraph.schema import DataType, GraphDef, NodeDef, TensorProto  # noqa: E402

WIDTHS = (1024, 4096, 4096, 1024)
DEFAULT_OUT = Path(__file__).resolve().parent / "big.pb"
# GraphDef version written by TensorFlow 2.21 (tf.version.GRAPH_DEF_VERSION); the ops used here
# (Placeholder, Const, MatMul, BiasAdd, Relu, Identity) are unchanged across all versions.
PRODUCER = 2474
DT_FLOAT = DataType.Value("DT_FLOAT")


def draw_weights(rng: np.random.Generator, n: int) -> np.ndarray:
    """n float32 values: 90% Laplace(0, 0.01), 10% Normal(0, 0.1), mixed per element."""
    values = rng.laplace(0.0, 0.01, size=n)
    wide = rng.random(n) < 0.10
    values[wide] = rng.normal(0.0, 0.1, size=int(wide.sum()))
    return values.astype(np.float32)


def _float_tensor(values: np.ndarray) -> TensorProto:
    """A DT_FLOAT TensorProto holding values as little-endian tensor_content."""
    tensor = TensorProto(dtype=DT_FLOAT)
    for size in values.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = values.astype("<f4", copy=False).tobytes()
    return tensor


def _node(graph_def: GraphDef, name: str, op: str, inputs: tuple[str, ...] = ()) -> NodeDef:
    """Append a node; float ops get their T attr (every op here is typed by T or dtype)."""
    node = graph_def.node.add(name=name, op=op, input=list(inputs))
    if op in ("MatMul", "BiasAdd", "Relu", "Identity"):
        node.attr["T"].type = DT_FLOAT
    return node


def _const(graph_def: GraphDef, name: str, values: np.ndarray) -> None:
    node = _node(graph_def, name, "Const")
    node.attr["dtype"].type = DT_FLOAT
    node.attr["value"].tensor.CopyFrom(_float_tensor(values))


def build_graph(seed: int = 0, scale: int = 1) -> GraphDef:
    """The benchmark GraphDef: input [-1, w0] → dense layers with ReLU between → Identity output."""
    widths = [w // scale for w in WIDTHS]
    if min(widths) < 1 or any(w % scale for w in WIDTHS):
        raise ValueError(f"--scale must divide every width {WIDTHS}; got {scale}")
    graph_def = GraphDef()
    graph_def.versions.producer = PRODUCER
    node = _node(graph_def, "input", "Placeholder")
    node.attr["dtype"].type = DT_FLOAT
    node.attr["shape"].shape.dim.add(size=-1)
    node.attr["shape"].shape.dim.add(size=widths[0])
    previous = "input"
    n_layers = len(widths) - 1
    for index, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True), start=1):
        rng = np.random.default_rng([seed, index])  # one stream per layer: layers independent
        prefix = f"dense_{index}"
        _const(graph_def, f"{prefix}/kernel", draw_weights(rng, n_in * n_out).reshape(n_in, n_out))
        _const(graph_def, f"{prefix}/bias", rng.normal(0.0, 0.01, size=n_out).astype(np.float32))
        matmul = _node(graph_def, f"{prefix}/MatMul", "MatMul", (previous, f"{prefix}/kernel"))
        matmul.attr["transpose_a"].b = False
        matmul.attr["transpose_b"].b = False
        bias_add = _node(graph_def, f"{prefix}/BiasAdd", "BiasAdd",
                         (f"{prefix}/MatMul", f"{prefix}/bias"))
        bias_add.attr["data_format"].s = b"NHWC"
        previous = f"{prefix}/BiasAdd"
        if index < n_layers:
            _node(graph_def, f"{prefix}/Relu", "Relu", (previous,))
            previous = f"{prefix}/Relu"
    _node(graph_def, "output", "Identity", (previous,))
    return graph_def


def write_big_graph(path: str | os.PathLike[str], seed: int = 0, scale: int = 1) -> int:
    """Build and write the graph (deterministic serialization); return the file size in bytes."""
    data = build_graph(seed, scale).SerializeToString(deterministic=True)
    Path(path).write_bytes(data)
    return len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(DEFAULT_OUT), help="output .pb path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=1, help="divide every layer width by this")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    size = write_big_graph(args.out, args.seed, args.scale)
    print(f"wrote {args.out}: {size} bytes ({size / 1e6:.1f} MB) in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
