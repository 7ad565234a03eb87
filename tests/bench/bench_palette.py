"""Raw size of the palette form against the original file, and the time palettize/expand take.

For each file and k: ``compress`` (values form), ``palettize`` of every clustered tensor, the
serialized size over the original file's, then ``expand`` and a check that it gives the values
form byte for byte. ``floor`` is what the file would take if each clustered tensor cost only its
indices at ceil(log2 k) bits and its own k-entry palette, with everything else unchanged: no
decode nodes at all.

    python tests/bench/bench_palette.py tests/fixtures/mlp_digits.pb tests/fixtures/cnn_digits.pb
    python tests/bench/bench_palette.py tests/bench/big.pb --k 256 16 5   # make_big_graph.py
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import minigraph  # noqa: E402
from minigraph.graph import iter_consts  # noqa: E402


def _floor(graph_def: minigraph.schema.GraphDef, names: set[str], k: int, size: int) -> int:
    for ref in iter_consts(graph_def):
        if ref.name in names:
            info = minigraph.describe(ref.tensor)
            itemsize = info.nbytes // max(info.n_elements, 1)
            size += math.ceil(info.n_elements * max(1, math.ceil(math.log2(k))) / 8)
            size += k * itemsize - info.nbytes
    return size


def measure(path: Path, k: int, shared: bool) -> str:
    original = path.stat().st_size
    graph_def, report = minigraph.compress(minigraph.read_graph(path), n_clusters=k,
                                           global_clusters=shared)
    names = [row.name for row in report.tensors if row.clustered]
    values_form = graph_def.SerializeToString(deterministic=True)
    floor = _floor(graph_def, set(names), k, original)
    started = time.perf_counter()
    infos = minigraph.palettize(graph_def, names, shared=shared)
    palettize_s = time.perf_counter() - started
    size = graph_def.ByteSize()
    started = time.perf_counter()
    minigraph.expand(graph_def)
    expand_s = time.perf_counter() - started
    exact = graph_def.SerializeToString(deterministic=True) == values_form
    bits = sorted({info.bits for info in infos if info.palettized})
    return (f"{path.name:16s} k={k:<4d} {'global' if shared else 'per-tensor':10s} "
            f"{size:>11,d} / {original:>11,d} = {size / original:.4f} (floor {floor / original:.3f})"
            f"  bits {bits}  palettize {palettize_s:.2f} s  expand {expand_s:.2f} s"
            f"  expand exact: {exact}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--k", nargs="+", type=int, default=[256, 16, 5])
    args = parser.parse_args(argv)
    for path in args.files:
        for k in args.k:
            for shared in (False, True):
                print(measure(path, k, shared), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
