"""The long fuzz run: ten thousand hostile GraphDefs (or more) through the command line.

    PYTHONPATH=. python tests/bench/fuzz_long.py [--cases 10000] [--start 0] [--timeout 60]

Cases are those of tests/fuzz.py (``make_case(seed)``), run in-process in a worker process so
that a case which hangs can be timed out and the worker replaced. Prints the counts: cases,
exit codes of ``inspect`` and of compression, tracebacks (and warnings), hangs, worker crashes,
stderr broken, files inspected but not compressed, silent corruptions; then the seeds of up
to 20 findings to reproduce with
``fuzz_check.check_case(fuzz.make_case(seed), dir)``.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _worker(conn) -> None:
    sys.path.insert(0, str(TESTS))
    import fuzz
    import fuzz_check

    with tempfile.TemporaryDirectory() as workdir:
        while True:
            seed = conn.recv()
            if seed is None:
                return
            codes: list = []
            problems = fuzz_check.check_case(fuzz.make_case(seed), Path(workdir), codes)
            conn.send((codes, problems))


def _kind(problem: str) -> str:
    if problem.startswith("corruption") or "input file changed" in problem:
        return "silent corruptions"
    if "traceback" in problem:
        return "tracebacks"
    if "failed where inspect passed" in problem:
        return "inspected but not compressed"
    return "broken stderr or exit code"


class _Pool:
    """One worker process, replaced when a case hangs or kills it."""

    def __init__(self) -> None:
        self.process = None
        self.conn = None

    def start(self) -> None:
        self.conn, child = mp.Pipe()
        self.process = mp.get_context("spawn").Process(target=_worker, args=(child,),
                                                       daemon=True)
        self.process.start()

    def run(self, seed: int, timeout: float):
        if self.process is None or not self.process.is_alive():
            self.start()
        self.conn.send(seed)
        if not self.conn.poll(timeout):
            self.process.kill()
            self.process.join()
            self.process = None
            return "hang"
        try:
            return self.conn.recv()
        except EOFError:
            self.process = None
            return "crash"

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.conn.send(None)
            self.process.join(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    args = parser.parse_args()
    counts: collections.Counter = collections.Counter()
    inspect_codes: collections.Counter = collections.Counter()
    compress_codes: collections.Counter = collections.Counter()
    findings = []
    pool = _Pool()
    started = time.perf_counter()
    for seed in range(args.start, args.start + args.cases):
        outcome = pool.run(seed, args.timeout)
        counts["cases"] += 1
        if outcome in ("hang", "crash"):
            counts["hangs" if outcome == "hang" else "worker crashes"] += 1
            findings.append((seed, outcome))
            continue
        codes, problems = outcome
        inspect_codes[codes[0]] += 1
        compress_codes[codes[1]] += 1
        for kind in sorted({_kind(p) for p in problems}):
            counts[kind] += 1
        findings += [(seed, p) for p in problems]
    pool.stop()
    elapsed = time.perf_counter() - started
    print(f"cases: {counts['cases']} (seeds {args.start}..{args.start + args.cases - 1}), "
          f"{elapsed:.0f} s")
    print("inspect exits:", dict(sorted(inspect_codes.items(), key=str)))
    print("compress exits:", dict(sorted(compress_codes.items(), key=str)))
    for kind in ("tracebacks", "hangs", "worker crashes", "broken stderr or exit code",
                 "inspected but not compressed", "silent corruptions"):
        print(f"{kind}: {counts[kind]}")
    for seed, problem in findings[:20]:
        print(f"  seed {seed}: {problem}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
