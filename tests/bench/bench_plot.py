"""What a figure costs on a MobileNet-sized model: figure data during the run, then the drawing.

    python tests/bench/bench_plot.py [--k 256] [--repeat 3]

Builds (once) ``tests/bench/mobilenet_like.pb`` (ignored by git): the weight shapes of
MobileNet v1 1.0/224 (a 3×3×3×32 conv, 13 depthwise-separable blocks, the 1024→1001 classifier;
BatchNorm folded into biases), 4.23M float32 weights drawn as in make_big_graph.py. It then
times, in one process after a warm-up that pays numba's compilation:

1. ``plan_compression`` as ``minigraph FILE`` runs it (the clustering alone);
2. the same with ``Options(figure_data=True)``: the difference is the figure data (histograms,
   codebooks and the SQNR curve's up to 8 clusterings for each of the 6 tensors drawn);
3. ``draw`` to PNG and to SVG from the report (the first PNG includes importing matplotlib).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parents[1]))
sys.path.insert(0, str(BENCH))

from make_big_graph import PRODUCER, _const, draw_weights  # noqa: E402

from minigraph.compress import Options, plan_compression  # noqa: E402
from minigraph.pbfile import parse_graph_lifted, read_bytes  # noqa: E402
from minigraph.plot import draw  # noqa: E402
from minigraph.schema import GraphDef  # noqa: E402

OUT = BENCH / "mobilenet_like.pb"
# MobileNet v1 (Howard et al. 2017, table 1): output channels of the 13 separable blocks.
BLOCKS = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)


def build() -> GraphDef:
    """Consts only (shapes and sizes are what matter here), deterministic."""
    graph_def = GraphDef()
    graph_def.versions.producer = PRODUCER
    rng = np.random.default_rng(0)
    _const(graph_def, "conv1/kernel", draw_weights(rng, 3 * 3 * 3 * 32).reshape(3, 3, 3, 32))
    _const(graph_def, "conv1/bias", rng.normal(0, 0.01, 32).astype(np.float32))
    width = 32
    for index, out in enumerate(BLOCKS, start=1):
        name = f"block_{index}"
        _const(graph_def, f"{name}/depthwise/kernel",
               draw_weights(rng, 9 * width).reshape(3, 3, width, 1))
        _const(graph_def, f"{name}/depthwise/bias", rng.normal(0, 0.01, width).astype(np.float32))
        _const(graph_def, f"{name}/pointwise/kernel",
               draw_weights(rng, width * out).reshape(1, 1, width, out))
        _const(graph_def, f"{name}/pointwise/bias", rng.normal(0, 0.01, out).astype(np.float32))
        width = out
    _const(graph_def, "logits/kernel", draw_weights(rng, width * 1001).reshape(1, 1, width, 1001))
    _const(graph_def, "logits/bias", rng.normal(0, 0.01, 1001).astype(np.float32))
    return graph_def


def _time(fn, repeat: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not OUT.exists():
        OUT.write_bytes(build().SerializeToString(deterministic=True))
    data = read_bytes(OUT)
    graph_def, lifted = parse_graph_lifted(data)
    weights = sum(int(np.prod([d.size for d in n.attr["value"].tensor.tensor_shape.dim]))
                  for n in graph_def.node)
    print(f"{OUT.name}: {len(data) / 1e6:.1f} MB, {len(graph_def.node)} Consts, "
          f"{weights:,} weights, k={args.k}")

    def plan(figure: bool):
        return plan_compression(graph_def, Options(n_clusters=args.k, figure_data=figure),
                                lifted=lifted)[0]

    plan(True)  # warm-up: numba compiles (or loads its cache)
    plain, _ = _time(lambda: plan(False), args.repeat)
    shown, report = _time(lambda: plan(True), args.repeat)
    result = report.to_dict()
    with tempfile.TemporaryDirectory() as tmp:
        first, _ = _time(lambda: draw(result, Path(tmp) / "f.png"), 1)
        png, _ = _time(lambda: draw(result, Path(tmp) / "f.png"), args.repeat)
        svg, _ = _time(lambda: draw(result, Path(tmp) / "f.svg"), args.repeat)
    print(f"clustering only            {plain:6.2f} s")
    print(f"with figure data           {shown:6.2f} s  (+{shown - plain:.2f} s)")
    print(f"draw PNG, first (import)   {first:6.2f} s")
    print(f"draw PNG                   {png:6.2f} s")
    print(f"draw SVG                   {svg:6.2f} s")
    print(f"beyond clustering (figure data + first PNG): {shown - plain + first:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
