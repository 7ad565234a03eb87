"""Benchmark minigraph's 1-D k-means: the 2016 tool's scikit-learn call, kmeans1d, ckmeans.

Not part of the test run. Needs scikit-learn, kmeans1d and ckmeans besides minigraph's own
dependencies (a separate virtualenv: they are never minigraph dependencies). Every measurement
runs in a fresh subprocess on the same seeded float32 array, so peak memory is per tool:

    python tests/bench/bench_kmeans.py            # 1e5, 1e6, 1e7 (about 15 minutes)
    python tests/bench/bench_kmeans.py --quick    # 1e5 and 1e6, slow references at 1e5 only

Times are one run each (best of three for runs under a second); MSE is shown divided by the
exact optimum (minigraph's "optimal" for the same k).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OURS = [("auto", "auto"), ("optimal", "auto"), ("lloyd", "linear"), ("lloyd", "density"),
        ("lloyd", "kmeans++"), ("lloyd", "random")]
REFERENCES = ["sklearn-2016", "sklearn-k-means++", "kmeans1d", "ckmeans"]
DISTRIBUTIONS = ("mixture", "gaussian")


def make_values(dist: str, n: int, dtype: str = "float32") -> np.ndarray:
    """A seeded array: like trained weights (90% Laplace(0, 0.01) + 10% N(0, 0.1)) or N(0, 1)."""
    rng = np.random.default_rng(20160 + n)
    if dist == "mixture":
        values = np.where(rng.random(n) < 0.9, rng.laplace(0, 0.01, n), rng.normal(0, 0.1, n))
    else:
        values = rng.normal(0, 1, n)
    return values.astype(dtype)


def mse_of(values: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> float:
    """Mean squared error of a labelling, in float64, chunked."""
    total = 0.0
    centroids = np.asarray(centroids, np.float64)
    for start in range(0, values.size, 1 << 20):
        part = values[start:start + (1 << 20)].astype(np.float64)
        total += float(np.sum((part - centroids[labels[start:start + (1 << 20)]]) ** 2))
    return total / values.size


def run_tool(tool: str, values: np.ndarray, k: int) -> tuple[float, str]:
    """Run one tool once; returns (MSE, note)."""
    if tool == "sort":
        np.sort(values)
        return float("nan"), ""
    if tool.startswith("ours:"):
        from minigraph.engine import cluster
        method, init = tool[5:].split("/")
        result = cluster(values, k, method=method, init=init)
        return result.mse, f"{result.method}, {result.iterations} it, {result.centroids.size} c"
    if tool.startswith("sklearn"):
        from sklearn.cluster import KMeans
        if tool == "sklearn-2016":  # the 2016 tool's call
            model = KMeans(n_clusters=k, init="random", n_init=2, max_iter=300, random_state=0)
        else:
            model = KMeans(n_clusters=k, init="k-means++", n_init=1, max_iter=300, random_state=0)
        model.fit(values.reshape(-1, 1))
        return mse_of(values, model.labels_, model.cluster_centers_[:, 0]), ""
    if tool == "kmeans1d":
        import kmeans1d
        clusters, centroids = kmeans1d.cluster(values, k)
        return mse_of(values, np.asarray(clusters), np.asarray(centroids)), ""
    if tool == "ckmeans":
        import ckmeans
        groups = ckmeans.ckmeans(values.astype(np.float64), min(k, 255))
        sse = sum(float(np.sum((g - g.mean()) ** 2)) for g in groups)
        return sse / values.size, "k=255" if k > 255 else ""
    raise ValueError(tool)


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> int:
    """Reset the peak-RSS mark (Linux clear_refs 5); returns the current RSS in bytes."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS") * 1024


def worker(spec: dict) -> dict:
    """Measure one (tool, array, k) in this process: time, MSE, peak memory."""
    values = make_values(spec["dist"], spec["n"], spec.get("dtype", "float32"))
    tool, k = spec["tool"], spec["k"]
    if tool.startswith("ours:"):  # load the compiled kernels (warm cache) outside the timing
        run_tool(tool, values[:2000], k)
    rss_before = _reset_peak_rss()
    start = time.perf_counter()
    mse, note = run_tool(tool, values, k)
    elapsed = time.perf_counter() - start
    rss_peak = _status_kib("VmHWM") * 1024 - rss_before
    repeats = 2 if elapsed < 1.0 else 0
    for _ in range(repeats):
        start = time.perf_counter()
        run_tool(tool, values, k)
        elapsed = min(elapsed, time.perf_counter() - start)
    traced = None
    if tool.startswith("ours:"):  # numpy allocations (not those inside numba kernels)
        tracemalloc.start()
        run_tool(tool, values, k)
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {**spec, "time": elapsed, "mse": mse, "note": note, "rss": rss_peak, "traced": traced}


def first_call() -> dict:
    """Fresh process, warm cache: import time of numba, then the first and a second cluster call."""
    values = make_values("mixture", 100_000)
    start = time.perf_counter()
    import numba  # noqa: F401
    numba_import = time.perf_counter() - start
    from minigraph.engine import cluster
    start = time.perf_counter()
    cluster(values, 256)
    first = time.perf_counter() - start
    start = time.perf_counter()
    cluster(values, 256)
    second = time.perf_counter() - start
    return {"numba_import": numba_import, "first": first, "second": second}


def measure(spec: dict, timeout: float) -> dict:
    """Run `worker` in a subprocess (fresh memory high-water mark)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"> {timeout:.0f} s"}
    if done.returncode != 0:
        return {**spec, "error": (done.stderr.strip().splitlines() or ["failed"])[-1][:60]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def plan(sizes: list[int], quick: bool) -> list[dict]:
    """Every measurement of the run, in order."""
    specs = []
    for dist in DISTRIBUTIONS:
        for n in sizes:
            for k in (16, 256):
                tools = ["sort"] + [f"ours:{m}/{i}" for m, i in OURS]
                if n <= (10**5 if quick else 10**6):  # beyond: minutes, or k*n memory
                    tools += REFERENCES
                if "ckmeans" in tools and k > 255:
                    tools.append("ours:optimal@255")
                specs += [{"dist": dist, "n": n, "k": k, "tool": t} for t in tools]
    for spec in specs:
        if spec["tool"] == "ours:optimal@255":
            spec.update(tool="ours:optimal/auto", k=255, aside=True)
    return specs


def cell(result: dict, sort_time: float, optimum: float) -> str:
    """'time (x sort) / MSE ratio' for one table cell."""
    if "error" in result:
        return result["error"]
    text = f"{result['time']:.3g} s ({result['time'] / sort_time:.1f}×)"
    if result["tool"] != "sort":
        text += f" / {result['mse'] / optimum:.5f}"
    if result.get("note", "").startswith("k="):
        text += f" [{result['note']}]"
    return text


def table(results: list[dict]) -> str:
    """Markdown table: one row per array and k, one column per tool."""
    tools = ["sort"] + [f"ours:{m}/{i}" for m, i in OURS] + REFERENCES
    names = {"sort": "numpy.sort"}
    names.update({f"ours:{m}/{i}": m if m != "lloyd" else f"lloyd {i}" for m, i in OURS})
    lines = ["| array | n | k | " + " | ".join(names.get(t, t) for t in tools) + " |",
             "|" + "---|" * (len(tools) + 3)]
    rows: dict[tuple, dict] = {}
    for r in results:
        key = (r["dist"], r["n"], 256 if r.get("aside") else r["k"])
        rows.setdefault(key, {})[r["tool"] + ("@255" if r.get("aside") else "")] = r
    for (dist, n, k), row in rows.items():
        sort_time = row["sort"]["time"]
        optimum = row["ours:optimal/auto"]["mse"]
        cells = []
        for tool in tools:
            if tool not in row:
                cells.append("–")
                continue
            best = row["ours:optimal/auto@255"]["mse"] if tool == "ckmeans" and k > 255 else optimum
            cells.append(cell(row[tool], sort_time, best))
        lines.append(f"| {dist} | {n:.0e} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_table(results: list[dict]) -> str:
    """Peak memory of minigraph's auto and optimal runs and of the exact references."""
    lines = ["| array | n | k | tool | peak RSS increase | numpy peak (tracemalloc) |",
             "|---|---|---|---|---|---|"]
    shown = ("ours:auto/auto", "ours:optimal/auto", "kmeans1d", "ckmeans")
    for r in results:
        if "error" in r or r.get("aside") or r["tool"] not in shown:
            continue
        traced = "–"
        if r["traced"]:
            traced = f"{r['traced'] / 2**20:.0f} MiB ({r['traced'] / r['n']:.1f} B/value)"
        lines.append(f"| {r['dist']} | {r['n']:.0e} | {r['k']} | {r['tool']} | "
                     f"{r['rss'] / 2**20:.0f} MiB | {traced} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="sizes 1e5 and 1e6; references at 1e5 only")
    parser.add_argument("--sizes", help="comma-separated sizes, e.g. 1e5,1e6")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--first-call", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.first_call:
        print(json.dumps(first_call()))
        return 0
    sizes = args.sizes or ("1e5,1e6" if args.quick else "1e5,1e6,1e7")
    sizes = [int(float(size)) for size in sizes.split(",")]
    started = time.perf_counter()
    results = []
    for spec in plan(sizes, args.quick):
        result = measure(spec, timeout=900)
        results.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    fresh = json.loads(subprocess.run([sys.executable, __file__, "--first-call"], env=env,
                                      capture_output=True, text=True, check=True).stdout)
    big = measure({"dist": "mixture", "n": 25_000_000, "k": 256, "tool": "ours:auto/auto",
                   "dtype": "float64"}, 900)
    print("Time (× numpy.sort of the same array) / MSE ÷ optimal MSE; one column per tool.\n")
    print(table(results))
    print("\nPeak memory (RSS high-water mark increase in a fresh process; numpy's own count):\n")
    print(memory_table(results))
    print(f"\nGlobal-codebook size: 25M float64 values, auto, k=256: {big.get('time', 0):.2f} s, "
          f"peak RSS +{big.get('rss', 0) / 2**20:.0f} MiB, "
          f"numpy peak {(big.get('traced') or 0) / 2**20:.0f} MiB ({big.get('note', '')}).")
    print(f"\nFirst call in a fresh process (warm cache), 1e5 values, k=256: numba import "
          f"{fresh['numba_import']:.3f} s, first cluster() {fresh['first']:.3f} s, "
          f"second {fresh['second']:.3f} s.")
    print(f"\nBenchmark took {time.perf_counter() - started:.0f} s; numpy {np.__version__}, "
          f"{os.cpu_count()} cores.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
