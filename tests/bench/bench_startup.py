"""Benchmark what a short run costs before any clustering: numba compiling or loading its kernels.

Every row runs ``python -m minigraph MODEL -o OUT --force --quiet`` (default: the sample model
``tests/fixtures/mlp_digits.pb``) as a fresh subprocess and records its CPU time (user + system,
from ``resource.getrusage(RUSAGE_CHILDREN)`` around the child). The scenarios, one round of all
of them per ``--repeat`` (default 3, median reported next to the raw figures):

  first run        a fresh, empty NUMBA_CACHE_DIR: every kernel the model needs compiles (what the
                   first run after ``pip install`` costs).
  warm run         the same NUMBA_CACHE_DIR again: every kernel loads from the cache.
  read-only 1st    the packages copied into a read-only directory, run as a user whose HOME is
                   not writable and with NUMBA_CACHE_DIR unset, TMPDIR a fresh empty directory:
                   numba's own cache locations all fail, so the private per-user fallback under
                   TMPDIR is created and filled.
  read-only 2nd    the same again: kernels load from the private fallback.
  import only      ``python -c "import minigraph"``: the interpreter and import floor.

Run from the repository root with the development virtualenv:

    python tests/bench/bench_startup.py                  # ~30 s on 2 cores
    python tests/bench/bench_startup.py --repeat 5 --model tests/fixtures/cnn_digits.pb
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROWS = ("first run", "warm run", "read-only 1st", "read-only 2nd", "import only")


def cpu_of(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """CPU seconds (user + system) of one child process; fails loudly if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"bench_startup: {' '.join(command)} failed:\n{done.stderr}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def base_env() -> dict[str, str]:
    """This environment minus anything that chooses numba's cache or the import path."""
    drop = ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH", "NUMBA_DISABLE_JIT")
    return {key: value for key, value in os.environ.items() if key not in drop}


def read_only_site(work: Path) -> Path:
    """Copy the packages into work/site and make it read-only. Root ignores permission bits, so
    every __pycache__ is also a file (numba's in-tree cache and .pyc writes both fail)."""
    site = work / "site"
    for package in ("minigraph", "graphdef_pb2"):
        shutil.copytree(REPO / package, site / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [p for p in site.rglob("*") if p.is_dir()]:
        (folder / "__pycache__").write_text("")
    for path in sorted(site.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    return site


def one_round(model: Path, work: Path) -> dict[str, float]:
    """Every scenario once, in fresh directories under `work`."""
    run = [sys.executable, "-m", "minigraph", str(model), "-o", str(work / "out.pb"), "-f", "-q"]
    normal = {**base_env(), "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(work / "cache")}
    (work / "file").write_text("")
    (work / "tmp").mkdir()
    site = read_only_site(work)
    read_only = {**base_env(), "PYTHONPATH": str(site), "HOME": str(work / "file" / "home"),
                 "TMPDIR": str(work / "tmp")}
    try:
        return {
            "first run": cpu_of(run, normal, work),
            "warm run": cpu_of(run, normal, work),
            "read-only 1st": cpu_of(run, read_only, work),
            "read-only 2nd": cpu_of(run, read_only, work),
            "import only": cpu_of([sys.executable, "-c", "import minigraph"], normal, work),
        }
    finally:
        for path in site.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "tests/fixtures/mlp_digits.pb")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {row: [] for row in ROWS}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench_startup_") as work:
            for row, cpu in one_round(args.model.resolve(), Path(work)).items():
                figures[row].append(cpu)
    median = {row: statistics.median(values) for row, values in figures.items()}
    print(f"model: {args.model.name}; CPU seconds (user + system) per fresh process, "
          f"median of {args.repeat}")
    for row in ROWS:
        raw = ", ".join(f"{v:.2f}" for v in figures[row])
        print(f"  {row:<14} {median[row]:6.2f}   ({raw})")
    warm = median["warm run"]
    print(f"  first run / warm run          {median['first run'] / warm:5.2f}x")
    print(f"  read-only 1st / warm run      {median['read-only 1st'] / warm:5.2f}x")
    print(f"  read-only 2nd / warm run      {median['read-only 2nd'] / warm:5.2f}x"
          "   (target <= 1.5x)")
    print(f"  first run                     {median['first run']:5.2f} s   (target <= 2 s)")


if __name__ == "__main__":
    main()
