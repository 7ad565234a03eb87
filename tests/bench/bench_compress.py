"""Benchmark ``minigraph FILE`` end to end against protobuf alone and the 2016 tool's algorithm.

Every measured program runs as a fresh subprocess, one at a time, round-robin over the variants so
that machine noise spreads evenly; each is repeated ``--repeat`` times (default 3) and the median
is reported next to the raw times. Peak memory is the child's own ``ru_maxrss`` (``os.wait4``) or,
if larger, the summed VmRSS of its process tree sampled every 10 ms (worker processes would
otherwise be missed: ``ru_maxrss`` is a per-process maximum).

Rows:
  protobuf      read, parse, serialize (deterministic) and write the file with our generated
                classes alone; timed in-process around the work, and as subprocess wall time.
  interpreter   ``import numpy, numba, minigraph``: the baseline peak RSS for the minigraph rows;
                ``interpreter (protobuf only)`` imports our classes alone: the protobuf row's.
  minigraph …   ``python -m minigraph FILE -o OUT --force`` with default options, then with
                ``--gzip``/``--no-gzip``, ``--workers 1``, ``--no-verify``, ``--global_clusters``
                for whichever of those ``minigraph --help`` lists (missing ones are reported).
  2016 tool     ``legacy_2016.py`` under ``--tf-python`` (measured pieces, extrapolated), or a
                JSON it wrote earlier (``--legacy-json``).

Run from the repository root with the development virtualenv:

    python tests/bench/bench_compress.py                 # ~100 MB graph, ~12 min with the 2016 fit
    python tests/bench/bench_compress.py --quick         # 1.6 MB graph, smoke run (~1 min)
    python tests/bench/bench_compress.py --legacy-json L.json   # reuse a legacy_2016.py result
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from make_big_graph import write_big_graph  # noqa: E402

MIB = 1024 * 1024
TIME_TARGET, MEMORY_TARGET, LEGACY_TARGET = 5.0, 3.0, 1000.0
ISSUE_LEGACY_SECONDS = 49 * 60  # the issue's figure for the 2016 tool on the ~100 MB file
DEFAULT_TF_PYTHON = os.environ.get("TF_PYTHON", "python")  # a virtualenv with tensorflow-cpu
# (label, extra CLI arguments, the flag that must appear in --help)
VARIANTS = (
    ("minigraph (default)", [], None),
    ("minigraph --gzip", ["--gzip"], "--gzip"),
    ("minigraph --no-gzip", ["--no-gzip"], "--no-gzip"),
    ("minigraph --workers 1", ["--workers", "1"], "--workers"),
    ("minigraph --no-verify", ["--no-verify"], "--no-verify"),
    ("minigraph --global_clusters", ["--global_clusters"], "--global_clusters"),
    ("minigraph --palettize", ["--palettize"], "--palettize"),
    ("minigraph --palettize -k 16", ["--palettize", "-k", "16"], "--palettize"),
)
PROTOBUF_CODE = """
import json, sys, time
from graphdef_pb2.graph_pb2 import GraphDef
start = time.perf_counter()
with open(sys.argv[1], "rb") as handle:
    data = handle.read()
graph_def = GraphDef()
graph_def.ParseFromString(data)
parsed = time.perf_counter()
data = graph_def.SerializeToString(deterministic=True)
serialized = time.perf_counter()
with open(sys.argv[2], "wb") as handle:
    handle.write(data)
end = time.perf_counter()
print(json.dumps({"read_parse": parsed - start, "serialize": serialized - parsed,
                  "write": end - serialized, "total": end - start}))
"""
INTERPRETER_CODE = "import numpy, numba, minigraph, minigraph.schema"
PB_INTERPRETER_CODE = "import graphdef_pb2.graph_pb2"
# Memory baseline of each row: the interpreter with the same imports and no work.
BASELINE_OF = {"protobuf": "interpreter (protobuf only)"}


@dataclass
class Row:
    """Repeated measurements of one program."""

    label: str
    walls: list[float] = field(default_factory=list)
    works: list[float] = field(default_factory=list)  # in-process timings, when reported
    peaks: list[int] = field(default_factory=list)  # bytes
    note: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def peak(self) -> int:
        return int(statistics.median(self.peaks))


def _tree_rss(pid: int) -> int:
    """Summed VmRSS (bytes) of pid and its descendants, from /proc; 0 once gone."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total += int(match.group(1)) * 1024 if match else 0
    return total


def run(cmd: list[str], out_path: Path) -> tuple[float, int, int, str]:
    """Run cmd (stdout to out_path); return wall seconds, peak RSS bytes, exit code, stderr."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    sampled = [0]
    with open(out_path, "wb") as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=stdout, stderr=stderr)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.01):
                sampled[0] = max(sampled[0], _tree_rss(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")
    return wall, max(usage.ru_maxrss * 1024, sampled[0]), proc.returncode, errors


def cli_help() -> str:
    """``minigraph --help`` text (stdout and stderr), or '' if it fails to run."""
    result = subprocess.run([sys.executable, "-m", "minigraph", "--help"], cwd=REPO,
                            capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    return result.stdout + result.stderr


def has_flag(help_text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


def plan_variants(help_text: str) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The minigraph rows to run and notes for the ones skipped."""
    if not (has_flag(help_text, "--force") and (has_flag(help_text, "-o")
                                                or has_flag(help_text, "--output"))):
        return [], ["minigraph rows skipped: `minigraph --help` lists no -o/--force "
                    "(compression not available in this version)"]
    plan, notes = [], []
    for label, extra, flag in VARIANTS:
        if flag is None or has_flag(help_text, flag):
            plan.append((label, extra))
        else:
            notes.append(f"{label}: skipped, `minigraph --help` lists no {flag}")
    return plan, notes


def measure(big: Path, work: Path, plan: list[tuple[str, list[str]]], repeat: int,
            ) -> tuple[dict[str, Row], str]:
    """Round-robin over protobuf, interpreter and minigraph variants; return rows and a report."""
    py = sys.executable
    programs = [("protobuf", [py, "-c", PROTOBUF_CODE, str(big), str(work / "protobuf.pb")]),
                ("interpreter", [py, "-c", INTERPRETER_CODE]),
                ("interpreter (protobuf only)", [py, "-c", PB_INTERPRETER_CODE])]
    for label, extra in plan:
        programs.append((label, [py, "-m", "minigraph", str(big), "-o", str(work / "out.pb"),
                                 "--force", *extra]))
    rows = {label: Row(label) for label, _ in programs}
    report = ""
    if plan:  # first run fills numba's on-disk cache; shown apart, not counted
        cmd = dict(programs)["minigraph (default)"]
        wall, peak, code, errors = run(cmd, work / "stdout.txt")
        rows["minigraph (default)"].note = (f"warm-up run, not counted (compiles the numba "
                                            f"kernels if their cache is cold): {wall:.2f} s")
        _check(code, errors, cmd)
    for index in range(repeat):
        for label, cmd in programs:
            wall, peak, code, errors = run(cmd, work / "stdout.txt")
            _check(code, errors, cmd)
            row = rows[label]
            row.walls.append(wall)
            row.peaks.append(peak)
            text = (work / "stdout.txt").read_text(errors="replace")
            if label == "protobuf":
                row.works.append(json.loads(text)["total"])
            if label == "minigraph (default)" and index == 0:
                report = text
            print(f"  [{index + 1}/{repeat}] {label}: {wall:.2f} s, {peak / MIB:.0f} MiB",
                  file=sys.stderr, flush=True)
    return rows, report


def _check(code: int, errors: str, cmd: list[str]) -> None:
    if code != 0:
        raise SystemExit(f"bench: {' '.join(cmd[:4])}… exited {code}:\n{errors[-2000:]}")


def legacy(big: Path, args: argparse.Namespace) -> dict | None:
    """The 2016 tool's extrapolated result: from --legacy-json, or by running legacy_2016.py."""
    if args.legacy_json:
        result = json.loads(Path(args.legacy_json).read_text())
    elif args.tf_python and Path(args.tf_python).exists():
        cmd = [args.tf_python, str(HERE / "legacy_2016.py"), str(big)]
        if args.quick:
            cmd += ["--fit-elements", "65536", "--predict-elements", "5000"]
        print(f"  2016 tool: {' '.join(cmd)}", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        _check(done.returncode, done.stderr, cmd)
        result = json.loads(done.stdout)
    else:
        return None
    if result["file_bytes"] != big.stat().st_size:
        raise SystemExit(f"bench: legacy result is for a {result['file_bytes']}-byte file, "
                         f"{big} has {big.stat().st_size} bytes")
    return result


def table(rows: dict[str, Row], size: int, legacy_result: dict | None) -> list[str]:
    """Markdown table: one line per row, ratios against the protobuf baseline."""
    work = statistics.median(rows["protobuf"].works)
    proto_wall = rows["protobuf"].wall
    lines = ["| run | wall s (median) | wall s (runs) | peak RSS MiB | peak − its interpreter "
             "MiB | ÷ file size | ÷ protobuf work | ÷ protobuf wall |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for row in rows.values():
        runs = ", ".join(f"{w:.2f}" for w in row.walls)
        base = BASELINE_OF.get(row.label, "interpreter" if row.label.startswith("minigraph")
                               else None)
        extra = row.peak - rows[base].peak if base else 0
        memory = f"{extra / MIB:.0f} | {extra / size:.2f}" if base else " | "
        lines.append(f"| {row.label} | {row.wall:.2f} | {runs} | {row.peak / MIB:.0f} | "
                     f"{memory} | {row.wall / work:.2f} | {row.wall / proto_wall:.2f} |")
    works = ", ".join(f"{w:.2f}" for w in rows["protobuf"].works)
    lines.append(f"| protobuf, in-process work only | {work:.2f} | {works} | | | | 1.00 | |")
    if legacy_result:
        total = legacy_result["total_seconds"]
        lines.append(f"| 2016 tool (extrapolated, see below) | {total:.0f} | | | | | "
                     f"{total / work:.0f} | {total / proto_wall:.0f} |")
    return lines


def verdicts(rows: dict[str, Row], size: int, legacy_result: dict | None) -> list[str]:
    """The issue's targets, each with its measured value."""
    if "minigraph (default)" not in rows:
        return ["targets: not checked (no minigraph rows)"]
    main, work = rows["minigraph (default)"], statistics.median(rows["protobuf"].works)
    extra = (main.peak - rows["interpreter"].peak) / size
    lines = [f"time: minigraph wall / protobuf in-process work = {main.wall / work:.2f} "
             f"(target ≤ {TIME_TARGET:g}: {'PASS' if main.wall / work <= TIME_TARGET else 'FAIL'})"
             f"; / protobuf subprocess wall = {main.wall / rows['protobuf'].wall:.2f}",
             f"memory: (peak − interpreter) / file size = {extra:.2f} "
             f"(target ≤ {MEMORY_TARGET:g}: {'PASS' if extra <= MEMORY_TARGET else 'FAIL'})"]
    if legacy_result:
        speedup = legacy_result["total_seconds"] / main.wall
        lines.append(f"2016 tool (measured, extrapolated) / minigraph = {speedup:.0f}× "
                     f"(target ≥ {LEGACY_TARGET:g}×: "
                     f"{'PASS' if speedup >= LEGACY_TARGET else 'FAIL'})")
    if size > 50 * MIB:  # the issue's 49 minutes are for the full-size file only
        speedup = ISSUE_LEGACY_SECONDS / main.wall
        lines.append(f"2016 tool (the issue's 49 min) / minigraph = {speedup:.0f}× "
                     f"(target ≥ {LEGACY_TARGET:g}×: "
                     f"{'PASS' if speedup >= LEGACY_TARGET else 'FAIL'})")
    if "minigraph --workers 1" in rows:
        one = rows["minigraph --workers 1"].wall
        lines.append(f"second core: --workers 1 / default = {one / main.wall:.2f}× "
                     f"({one:.2f} s → {main.wall:.2f} s)")
    return lines


def legacy_lines(result: dict) -> list[str]:
    m, s = result["measured"], result["seconds"]
    return [f"2016 tool, extrapolated: {result['total_seconds']:.0f} s = "
            f"{result['total_seconds'] / 60:.1f} min over {result['n_elements']} elements in "
            f"{result['n_tensors']} tensors; {result['formula']}",
            f"  measured: fit {m['fit_seconds']:.1f} s on {m['fit_elements']} elements "
            f"({m['fit_us_per_element']:.1f} µs/element, {m['fit_iterations']} iterations); "
            f"per-element predict {m['predict_seconds']:.1f} s on {m['predict_elements']} "
            f"elements ({m['predict_us_per_element']:.1f} µs/element)",
            "  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in s.items()),
            f"  versions: {result['versions']}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small graph (--scale 8), fast")
    parser.add_argument("--file", type=Path, help="GraphDef to use (default: generated)")
    parser.add_argument("--regenerate", action="store_true", help="rewrite the generated graph")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tf-python", default=DEFAULT_TF_PYTHON,
                        help="Python with TensorFlow + scikit-learn for the 2016 tool ('' skips)")
    parser.add_argument("--legacy-json", help="use this legacy_2016.py JSON instead of running it")
    args = parser.parse_args(argv)

    big = args.file or HERE / ("big_quick.pb" if args.quick else "big.pb")
    if args.file is None and (args.regenerate or not big.exists()):
        print(f"generating {big}", file=sys.stderr, flush=True)
        write_big_graph(big, seed=0, scale=8 if args.quick else 1)
    size = big.stat().st_size
    plan, notes = plan_variants(cli_help())
    work = Path(tempfile.mkdtemp(prefix="minigraph-bench-"))
    try:
        rows, report = measure(big, work, plan, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    legacy_result = legacy(big, args)
    if legacy_result is None:
        notes.append("2016 tool: skipped (no --tf-python interpreter, no --legacy-json)")

    print(f"file: {big} ({size} bytes, {size / MIB:.1f} MiB); python {sys.version.split()[0]}; "
          f"{os.cpu_count()} CPUs; repeat {args.repeat}, median shown")
    if report:
        print("\nminigraph report (default options, first counted run):\n" + report.rstrip())
    print()
    for line in notes + [row.note for row in rows.values() if row.note]:
        print(line)
    if legacy_result:
        print("\n".join(legacy_lines(legacy_result)))
    print()
    if args.quick:
        print("quick run: targets are for the ~100 MB graph; here start-up dominates")
    print("\n".join(verdicts(rows, size, legacy_result)))
    print()
    print("\n".join(table(rows, size, legacy_result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
