"""Numba kernels over "sorted data": range sums from block prefix sums, shared by the routes."""

# Data layout shared by the kernels ("sorted data"):
#   x      ndarray (n,), sorted ascending, finite, float32 or float64.
#   block  1 for weighted points (x distinct, weights in pw), else the block size of unit weights.
#   pw     float64 (n + 1,) cumulative weights when block == 1; unused (may be empty) otherwise.
#   p1, p2 float64 (n // block + 1,) prefix sums of (x - shift) and (x - shift)**2 (weighted when
#          block == 1), sampled every `block` positions: a range sum costs O(block) while the
#          prefix arrays cost 16 / block bytes per value instead of 16.
#   shift  a central value subtracted before summing, so sums of squares stay small and
#          SSE = S2 - S1**2 / W does not cancel away (the data may sit far from zero).
# float32 data is not widened to float64 (memory), so kernels taking `x` compile once per dtype.
# Elements are read as float(x[i]): compiled, that widens float32 as numba would anyway; with
# NUMBA_DISABLE_JIT, NumPy 2 would otherwise do float32 - Python float in float32 (NEP 50).
# Partitions are `bounds` arrays (c + 1,): cluster j holds sorted positions bounds[j]:bounds[j+1].

from __future__ import annotations

from ._jit import jit


@jit(inline="always")
def _range_sums(x, p1, p2, pw, block, shift, a, b):
    """(weight, sum, sum of squares) of x[a:b] - shift; O(block)."""
    if b <= a:
        return 0.0, 0.0, 0.0
    if block == 1:
        return pw[b] - pw[a], p1[b] - p1[a], p2[b] - p2[a]
    qa = (a + block - 1) // block
    qb = b // block
    s1 = 0.0
    s2 = 0.0
    if qa >= qb:
        for i in range(a, b):
            d = float(x[i]) - shift
            s1 += d
            s2 += d * d
        return float(b - a), s1, s2
    for i in range(a, qa * block):
        d = float(x[i]) - shift
        s1 += d
        s2 += d * d
    for i in range(qb * block, b):
        d = float(x[i]) - shift
        s1 += d
        s2 += d * d
    return float(b - a), s1 + (p1[qb] - p1[qa]), s2 + (p2[qb] - p2[qa])


@jit(inline="always")
def _search_right(x, v, lo, hi):
    """First index i in [lo, hi] with x[i] > v (x sorted), hi if none."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if float(x[mid]) <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def block_prefix(x, block, shift, p1, p2):
    """Fill block prefix sums of sorted unit-weight values; return the number of distinct values.

    x: ndarray (n,), float32/float64, sorted, finite. p1, p2: float64 (n // block + 1,), OUT:
    p1[q] = sum(x[:q * block] - shift), p2 likewise of squares. O(n).
    """
    n = x.shape[0]
    s1 = 0.0
    s2 = 0.0
    p1[0] = 0.0
    p2[0] = 0.0
    for q in range(n // block):
        b1 = 0.0
        b2 = 0.0
        for i in range(q * block, (q + 1) * block):
            d = float(x[i]) - shift
            b1 += d
            b2 += d * d
        s1 += b1
        s2 += b2
        p1[q + 1] = s1
        p2[q + 1] = s2
    distinct = 1 if n > 0 else 0
    for i in range(1, n):
        if x[i] != x[i - 1]:
            distinct += 1
    return distinct


@jit
def run_lengths(x, values, counts):
    """Distinct values of sorted x and their multiplicities.

    x: ndarray (n,), sorted, finite. values, counts: float64 (distinct,), OUT. O(n).
    """
    j = -1
    for i in range(x.shape[0]):
        if i == 0 or x[i] != x[i - 1]:
            j += 1
            values[j] = x[i]
            counts[j] = 0.0
        counts[j] += 1.0


@jit
def partition_sums(x, p1, p2, pw, block, shift, bounds, w, s1, s2):
    """Weight, sum and sum of squares of (x - shift) over each range of `bounds`.

    bounds: int64 (c + 1,), nondecreasing. w, s1, s2: float64 (c,), OUT. O(c * block).
    """
    for j in range(bounds.shape[0] - 1):
        w[j], s1[j], s2[j] = _range_sums(x, p1, p2, pw, block, shift, bounds[j], bounds[j + 1])


@jit
def partition_sse(x, pw, block, bounds, centroids):
    """Sum of squared distances of each value to its cluster's centroid, by direct summation.

    centroids: float64 (c,); bounds: int64 (c + 1,). O(n); exact up to float64 rounding.
    """
    total = 0.0
    for j in range(centroids.shape[0]):
        c = centroids[j]
        part = 0.0
        for i in range(bounds[j], bounds[j + 1]):
            d = float(x[i]) - c
            if block == 1:
                part += (pw[i + 1] - pw[i]) * d * d
            else:
                part += d * d
        total += part
    return total
