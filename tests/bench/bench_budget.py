"""Cost of an all-k error curve against one clustering at k = 256, on float32 arrays.

Run from the repository root: ``PYTHONPATH=. python tests/bench/bench_budget.py [--big PATH]``.
Arrays as in bench_kmeans.py: *mixture* = 90% Laplace(0, 0.01) + 10% N(0, 0.1). Each time is
the best of three runs after a warm-up (numba compiled and cached). With ``--big PATH`` (made by
tests/bench/make_big_graph.py) it also times ``minigraph PATH`` plain and with
``--bits-per-weight 4`` and ``--min-sqnr 30`` in fresh processes, and prints the ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from minigraph.engine import cluster, error_curve


def _mixture(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.laplace(0, 0.01, n)
    wide = rng.random(n) < 0.1
    values[wide] = rng.normal(0, 0.1, int(wide.sum()))
    return values.astype(np.float32)


def _best(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def curves() -> None:
    print("| n | cluster(k=256) | error_curve(k_max=256) | ratio |")
    print("|---:|---:|---:|---:|")
    for n in (10**5, 10**6, 10**7):
        values = _mixture(n)
        t_cluster = _best(lambda v=values: cluster(v, 256))
        t_curve = _best(lambda v=values: error_curve(v, 256))
        print(f"| {n:.0e} | {t_cluster:.4f} s | {t_curve:.4f} s | {t_curve / t_cluster:.2f}x |")


def _run(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "minigraph", *args], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def big(path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.pb")
        runs = {"plain k=256": ["-f", "-o", out, path],
                "--bits-per-weight 4": ["-f", "-o", out, "--bits-per-weight", "4", path],
                "--min-sqnr 30": ["-f", "-o", out, "--min-sqnr", "30", path],
                # The palette form weighs per-group palettes (8 and 32 channels) too.
                "plain k=256 --palettize": ["-f", "-o", out, "--palettize", path],
                "--bits-per-weight 4 --palettize": ["-f", "-o", out, "--bits-per-weight", "4",
                                                    "--palettize", path]}
        times = {name: min(_run(args) for _ in range(2)) for name, args in runs.items()}
    base = times["plain k=256"]
    for name, seconds in times.items():
        print(f"{name}: {seconds:.2f} s ({seconds / base:.2f}x plain)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--big")
    args = parser.parse_args()
    curves()
    if args.big:
        big(args.big)
