"""Exact NumPy twins of the cheap kernels, so that small tensors need not compile them.

Compiling a kernel costs 0.1-0.25 s of CPU (measured with tests/bench/bench_startup.py), far
more than running it on a small tensor: without the twins, the sample model's first run after
an install compiles seven kernels, with them one. Each twin has its kernel's signature and
returns bit-identical results: every sum the kernel accumulates one term at a time is an
``np.cumsum`` here (accumulate is sequential, unlike ``np.sum``'s pairwise summation), seeded
with the kernel's 0.0 so even the sign of a zero sum agrees, and every term is computed with
the same operations, in the same precision and order. tests/test_engine_kernels.py holds each
twin against its kernel bit for bit.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import numpy as np

# Inputs of at most SMALL values take the twins: there all four together cost about 1.5 ms
# (0.3 ms at 8,192 values), against 0.1-0.25 s to compile each kernel they stand in for.
SMALL = 1 << 15
FEW = 1024  # partition_sse's twin loops over clusters in Python: 4 ms at 1024, 35 ms at 8192
_local = threading.local()


def small(n: int) -> bool:
    """Whether an input of n values takes the twins (never inside `kernels_preferred`)."""
    return n <= SMALL and not getattr(_local, "kernels", False)


@contextmanager
def kernels_preferred() -> Iterator[None]:
    """In this thread, small inputs take the kernels too: for many small arrays in a row,
    where the kernels' one-time compile or load is repaid (they run about twice as fast as
    the twins at 32,768 values). Results are the same either way."""
    before = getattr(_local, "kernels", False)
    _local.kernels = True
    try:
        yield
    finally:
        _local.kernels = before


def _running_total(terms: np.ndarray) -> float:
    """0.0 + terms[0] + terms[1] + ..., added in order as a kernel's loop does."""
    return float(np.cumsum(np.concatenate(([0.0], terms)))[-1])


def block_prefix(x: np.ndarray, block: int, shift: float, p1: np.ndarray, p2: np.ndarray) -> int:
    """Twin of _sorted_kernels.block_prefix: block prefix sums (OUT) and the distinct count."""
    n_blocks = x.size // block
    d = x[: n_blocks * block].astype(np.float64).reshape(n_blocks, block) - shift
    zero = np.zeros((n_blocks, 1))
    for out, terms in ((p1, d), (p2, d * d)):
        per_block = np.cumsum(np.concatenate((zero, terms), axis=1), axis=1)[:, -1]
        out[0] = 0.0
        out[1:] = np.cumsum(np.concatenate(([0.0], per_block)))[1:]
    return int(np.count_nonzero(x[1:] != x[:-1])) + (1 if x.size else 0)


def run_lengths(x: np.ndarray, values: np.ndarray, counts: np.ndarray) -> None:
    """Twin of _sorted_kernels.run_lengths: distinct values of sorted x and their counts (OUT)."""
    starts = np.flatnonzero(np.concatenate(([True], x[1:] != x[:-1]))) if x.size else \
        np.zeros(0, np.int64)
    values[:] = x[starts]
    counts[:] = np.diff(np.append(starts, x.size))


def partition_sums(x: np.ndarray, p1: np.ndarray, p2: np.ndarray, pw: np.ndarray, block: int,
                   shift: float, bounds: np.ndarray, w: np.ndarray, s1: np.ndarray,
                   s2: np.ndarray) -> None:
    """Twin of _sorted_kernels.partition_sums for weighted points (block == 1 only): weight,
    sum and sum of squares of each range (OUT), differences of the full prefix sums."""
    if block != 1:
        raise ValueError(f"partition_sums twin takes block 1 only, got {block}")
    a, b = bounds[:-1], bounds[1:]
    w[:], s1[:], s2[:] = pw[b] - pw[a], p1[b] - p1[a], p2[b] - p2[a]


def partition_sse(x: np.ndarray, pw: np.ndarray, block: int, bounds: np.ndarray,
                  centroids: np.ndarray) -> float:
    """Twin of _sorted_kernels.partition_sse: squared distances to each cluster's centroid."""
    parts = np.empty(centroids.size)
    for j in range(centroids.size):
        a, b = bounds[j], bounds[j + 1]
        d = x[a:b].astype(np.float64) - centroids[j]
        terms = (pw[a + 1 : b + 1] - pw[a:b]) * d * d if block == 1 else d * d
        parts[j] = _running_total(terms)
    return _running_total(parts)


def assign_labels(values: np.ndarray, thresholds: np.ndarray, labels: np.ndarray) -> None:
    """Twin of _codebook_kernels.assign_labels: thresholds strictly below each value (OUT);
    0 for NaN and +-inf."""
    below = np.searchsorted(thresholds, values, side="left")
    labels[:] = np.where(np.isfinite(values), below, 0)


def apply_codebook(values: np.ndarray, labels: np.ndarray, book: np.ndarray, out: np.ndarray,
                   used: np.ndarray) -> tuple[float, float, float, int]:
    """Twin of _codebook_kernels.apply_codebook: new values (OUT), codebook use (IN/OUT) and
    (sum of squared errors, sum of squared values, largest absolute error, finite count).

    Compiled, the kernel's ``float()`` of a float32 stays float32 (numba types it so), so each
    difference and square is taken in the values' dtype and only summed in float64.
    """
    finite = np.isfinite(values)
    chosen = labels[finite]
    out[:] = values
    out[finite] = book[chosen]
    used[chosen] = 1
    v = values[finite]
    with np.errstate(over="ignore"):  # float32 squares past 3.4e38 are inf, as compiled
        d = book[chosen] - v
        squares, signal = (d * d).astype(np.float64), (v * v).astype(np.float64)
    worst = float(np.max(np.abs(d), initial=0.0))
    return _running_total(squares), _running_total(signal), worst, int(v.size)
