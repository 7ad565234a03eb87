"""Benchmark compressing a SavedModel directory against copying it.

Each variant runs as a fresh subprocess (so imports, numba's cache load and file I/O count),
round-robin over the variants, ``--repeat`` times (default 3); the median wall time is reported
with the raw times, and the ratio of minigraph's median to the copy's.

  copy (cp -r)          ``cp -r SRC DST``: the floor any tool writing a new directory pays.
  copy (shutil)         ``shutil.copytree`` in a fresh Python.
  copy + fsync          the same, then every file and directory flushed to disk, as minigraph
                        does before publishing its output (on this machine's page cache a
                        plain copy of 100 MB takes ~0.03 s, a memory copy).
  minigraph k=256       ``compress_savedmodel(SRC, DST)``, default options, in a fresh Python.
  minigraph global      the same with one global codebook.

Make the input first (needs TensorFlow), then run with the development virtualenv:

    /work/tfvenv/bin/python tests/bench/make_big_savedmodel.py      # ~100 MB of variables
    python tests/bench/bench_savedmodel.py [SRC] [--repeat 3]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SRC = Path(__file__).resolve().parent / "big_savedmodel"
COMPRESS = ("import sys; from minigraph.compress import Options; "
            "from minigraph.savedmodel import compress_savedmodel; "
            "compress_savedmodel(sys.argv[1], sys.argv[2], Options(global_clusters={}))")

FSYNC_COPY = ("import os, shutil, sys; shutil.copytree(*sys.argv[1:3])\n"
              "for here, _, files in os.walk(sys.argv[2], topdown=False):\n"
              "    for name in files:\n"
              "        with open(os.path.join(here, name), 'rb') as f: os.fsync(f.fileno())\n"
              "    d = os.open(here, os.O_RDONLY); os.fsync(d); os.close(d)\n")


def _variants(src: Path, dst: Path) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "copy (cp -r)": ["cp", "-r", str(src), str(dst)],
        "copy (shutil)": [python, "-c", "import shutil, sys; shutil.copytree(*sys.argv[1:3])",
                          str(src), str(dst)],
        "copy + fsync": [python, "-c", FSYNC_COPY, str(src), str(dst)],
        "minigraph k=256": [python, "-c", COMPRESS.format(False), str(src), str(dst)],
        "minigraph global": [python, "-c", COMPRESS.format(True), str(src), str(dst)],
    }


def _run(command: list[str], dst: Path) -> float:
    if dst.exists():
        shutil.rmtree(dst)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", type=Path, default=DEFAULT_SRC)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not (args.src / "saved_model.pb").is_file():
        raise SystemExit(f"{args.src}: no SavedModel; run make_big_savedmodel.py first")
    size = sum(p.stat().st_size for p in args.src.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory(dir=args.src.parent) as tmp:
        dst = Path(tmp) / "out"
        variants = _variants(args.src, dst)
        _run(variants["minigraph k=256"], dst)  # warm numba's cache and the page cache
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, command in variants.items():
                times[name].append(_run(command, dst))
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["copy (cp -r)"]
    print(f"{args.src}: {size / 1e6:.1f} MB in {sum(1 for p in args.src.rglob('*') if p.is_file())} files")
    for name, values in times.items():
        raw = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:18s} median {medians[name]:6.2f} s  ({raw})  {medians[name] / floor:5.1f}x cp -r"
              f"  {medians[name] / medians['copy + fsync']:5.1f}x copy + fsync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
