"""Fuzzing the command line in-process: hostile GraphDefs (tests/fuzz.py) for a time budget.

MINIGRAPH_FUZZ_SECONDS sets the budget (default 60 s); MINIGRAPH_FUZZ_SEED the first seed.
Every case runs ``minigraph inspect FILE`` and ``minigraph OPTIONS FILE``; the promises checked
are in ``fuzz_check.check_case``. A failure names the seeds: ``fuzz.make_case(seed)`` rebuilds
a case.
"""

from __future__ import annotations

import os
import time

import numpy as np

import fuzz
import fuzz_check

BUDGET = float(os.environ.get("MINIGRAPH_FUZZ_SECONDS", "60"))
FIRST_SEED = int(os.environ.get("MINIGRAPH_FUZZ_SEED", "0"))


def test_hostile_files_get_clean_errors_or_correct_outputs(tmp_path):
    deadline = time.monotonic() + BUDGET
    failures: dict[int, list[str]] = {}
    seed = FIRST_SEED
    while time.monotonic() < deadline or seed == FIRST_SEED:
        problems = fuzz_check.check_case(fuzz.make_case(seed), tmp_path)
        if problems:
            failures[seed] = problems
        seed += 1
    assert not failures, f"{len(failures)} of {seed - FIRST_SEED} cases broke a promise: " + \
        "; ".join(f"seed {s}: {p}" for s, p in list(failures.items())[:10])


def test_the_checker_catches_a_finite_value_made_infinite(tmp_path):
    before = fuzz.const(b"w", fuzz.vi(1, 19) + fuzz.ld(2, fuzz.ld(2, fuzz.vi(1, 2)))
                        + fuzz.ld(4, np.array([65504, 1], "<f2").tobytes()))
    after = fuzz.const(b"w", fuzz.vi(1, 19) + fuzz.ld(2, fuzz.ld(2, fuzz.vi(1, 2)))
                       + fuzz.ld(4, np.array([np.inf, 1], "<f2").tobytes()))
    (tmp_path / "out.pb").write_bytes(after)
    assert fuzz_check.output_problems(before, tmp_path / "out.pb", 2, True) == [
        "'w': a finite value became non-finite"]


def test_the_checker_catches_too_many_values_and_moved_nans(tmp_path):
    def graph(values) -> bytes:
        return fuzz.const(b"w", fuzz.vi(1, 2) + fuzz.ld(2, fuzz.ld(2, fuzz.vi(1, 4)))
                          + fuzz.ld(4, np.array(values, "<f8").tobytes()))

    (tmp_path / "out.pb").write_bytes(graph([1.0, 2.0, 3.0, np.nan]))
    assert fuzz_check.output_problems(graph([1.0, 2.0, 3.5, np.nan]), tmp_path / "out.pb", 2,
                                False) == ["'w': more than 2 distinct values"]
    (tmp_path / "out.pb").write_bytes(graph([1.0, np.nan, 3.0, 3.0]))
    assert "'w': NaN/Inf not kept bit for bit" in fuzz_check.output_problems(
        graph([1.0, 2.0, 3.0, np.nan]), tmp_path / "out.pb", 2, False)
