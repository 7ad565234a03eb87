"""Numba kernels of Lloyd's algorithm and k-means++ seeding on sorted data (see _sorted_kernels)."""

from __future__ import annotations

import numpy as np

from ._jit import jit
from ._sorted_kernels import _range_sums, _search_right

# numba's cache is keyed on this file's contents alone (numba/core/caching.py, _index_key and
# the source stamp), yet these kernels compile in helpers from _sorted_kernels.py. Its
# fingerprint here makes every change there a change here, so no stale kernel is loaded;
# tests/test_engine_kernels.py checks it and prints the new value.
DEPENDS_ON = {"_sorted_kernels.py": "7b4dabe556d82581"}


@jit
def _sort(a):
    """Sort a NaN-free float64 array in place: heapsort, O(n log n).

    Used instead of ``a.sort()``, whose compiled quicksort costs about 0.7 s of CPU to compile
    (tests/bench/bench_startup.py); the order of equal values (0.0 and -0.0) may differ, which
    no caller can observe: partitions depend only on the centroids' values, and every kept
    centroid is recomputed as its cluster's mean before it is returned.
    """
    n = a.shape[0]
    for root in range(n // 2 - 1, -1, -1):
        _sift_down(a, root, n)
    for end in range(n - 1, 0, -1):
        top = a[0]
        a[0] = a[end]
        a[end] = top
        _sift_down(a, 0, end)


@jit(inline="always")
def _sift_down(a, root, end):
    """Restore the max-heap property of a[root:end] below root."""
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and a[child] < a[child + 1]:
            child += 1
        if not a[root] < a[child]:
            return
        top = a[root]
        a[root] = a[child]
        a[child] = top
        root = child


@jit
def _assign_bounds(x, centroids, bounds):
    """Nearest-centroid partition of sorted x; a value at a midpoint joins the lower cluster."""
    k = centroids.shape[0]
    n = x.shape[0]
    bounds[0] = 0
    bounds[k] = n
    for j in range(1, k):
        mid = 0.5 * centroids[j - 1] + 0.5 * centroids[j]
        bounds[j] = _search_right(x, mid, bounds[j - 1], n)


@jit
def _update_means(x, p1, p2, pw, block, shift, centroids, bounds):
    """Move each non-empty cluster's centroid to its mean (kept within the cluster's range)."""
    for j in range(centroids.shape[0]):
        a = bounds[j]
        b = bounds[j + 1]
        if b > a:
            w, s1, _ = _range_sums(x, p1, p2, pw, block, shift, a, b)
            # Rounding must not push a mean past its cluster's extremes: centroids stay
            # strictly ascending because the clusters' value ranges are disjoint.
            centroids[j] = min(max(shift + s1 / w, float(x[a])), float(x[b - 1]))


@jit
def _relocate_empty(x, p1, p2, pw, block, shift, centroids, bounds):
    """Move empty clusters' centroids to the farthest member of the largest-SSE clusters.

    Each empty cluster takes a different donor: the not yet used cluster with the largest
    sum of squares about its centroid that holds two or more distinct values; the centroid
    goes to the donor's member farthest from the donor's centroid. Returns how many moved.
    """
    k = centroids.shape[0]
    sse = np.empty(k)
    for j in range(k):
        sse[j] = -1.0
        a = bounds[j]
        b = bounds[j + 1]
        if b > a and x[b - 1] != x[a]:
            w, s1, s2 = _range_sums(x, p1, p2, pw, block, shift, a, b)
            d = centroids[j] - shift
            sse[j] = max(s2 - 2.0 * d * s1 + d * d * w, 0.0)
    moved = 0
    for e in range(k):
        if bounds[e + 1] > bounds[e]:
            continue
        donor = -1
        for j in range(k):
            if sse[j] >= 0.0 and (donor < 0 or sse[j] > sse[donor]):
                donor = j
        if donor < 0:
            break
        sse[donor] = -1.0
        lo = float(x[bounds[donor]])
        hi = float(x[bounds[donor + 1] - 1])
        c = centroids[donor]
        centroids[e] = lo if c - lo >= hi - c else hi
        moved += 1
    _sort(centroids)
    return moved


@jit
def _compact(x, p1, p2, pw, block, shift, centroids, bounds):
    """Drop empty clusters; centroids become their clusters' means. Returns the count kept."""
    k = centroids.shape[0]
    kept = 0
    for j in range(k):
        if bounds[j + 1] > bounds[j]:
            bounds[kept] = bounds[j]
            kept += 1
    bounds[kept] = bounds[k]
    for j in range(kept):
        centroids[j] = 0.0
    _update_means(x, p1, p2, pw, block, shift, centroids[:kept], bounds[: kept + 1])
    return kept


@jit
def lloyd(x, p1, p2, pw, block, shift, centroids, bounds, max_iter):
    """Lloyd's k-means on sorted data, each iteration O(k log n + k * block).

    Boundaries between clusters are the midpoints of adjacent centroids, found by binary
    search; means come from the prefix sums (Lloyd 1982, on sorted 1-D data). Before each
    mean update, empty clusters are re-seeded (see `_relocate_empty`); this and both
    half-steps never raise the sum of squares. Stops at a fixed point (no boundary moved,
    none empty) or after `max_iter` >= 1 mean updates, always on a mean update, so each
    centroid is the mean of its cluster. Empty clusters left at the end are dropped.

    centroids: float64 (k,), sorted, IN initial / OUT final in [:k_out].
    bounds: int64 (k + 1,), OUT partition in [:k_out + 1]. Returns (iterations, k_out).
    """
    k = centroids.shape[0]
    prev = np.empty(k + 1, np.int64)
    _assign_bounds(x, centroids, bounds)
    iterations = 0
    while True:
        moved = 0
        for j in range(k):
            if bounds[j + 1] == bounds[j]:
                moved = _relocate_empty(x, p1, p2, pw, block, shift, centroids, bounds)
                break
        if moved > 0:
            _assign_bounds(x, centroids, bounds)
        _update_means(x, p1, p2, pw, block, shift, centroids, bounds)
        iterations += 1
        if iterations >= max_iter:
            break
        for j in range(k + 1):  # a loop: slice assignment costs 1.4 s to compile
            prev[j] = bounds[j]
        _sort(centroids)
        _assign_bounds(x, centroids, bounds)
        changed = moved > 0
        for j in range(k + 1):
            if bounds[j] != prev[j]:
                changed = True
        if not changed:
            break
    return iterations, _compact(x, p1, p2, pw, block, shift, centroids, bounds)


@jit(inline="always")
def _index_at_rank(pw, block, n, rank):
    """Sorted position holding the value of the given weighted rank (0 <= rank < total)."""
    if block != 1:
        return min(max(int(rank), 0), n - 1)
    return min(_search_right(pw, rank, 1, n) - 1, n - 1)


@jit(inline="always")
def _sse_about(x, p1, p2, pw, block, shift, a, b, c):
    """Sum of squares of x[a:b] about c, from prefix sums."""
    w, s1, s2 = _range_sums(x, p1, p2, pw, block, shift, a, b)
    d = c - shift
    return max(s2 - 2.0 * d * s1 + d * d * w, 0.0)


@jit
def kmeans_plus_plus(x, p1, p2, pw, block, shift, uniforms, centroids):
    """k-means++ seeding (Arthur & Vassilvitskii 2007) on sorted data.

    Each new centroid is a data value drawn with probability proportional to its squared
    distance to the nearest centroid chosen so far; in 1-D the nearest-centroid cells are
    ranges, so drawing costs O(k + log n * block) via prefix sums. uniforms: float64 (k,) in
    [0, 1), the caller's random numbers. centroids: float64 (k,), OUT sorted in [:placed].
    Returns placed: < k only if there are fewer distinct values, or if every squared distance
    to the centroids placed so far underflows to 0. O(k**2 * (log n + block)).
    """
    n = x.shape[0]
    k = centroids.shape[0]
    total_w = pw[n] if block == 1 else float(n)
    centroids[0] = x[_index_at_rank(pw, block, n, uniforms[0] * total_w)]
    bounds = np.empty(k + 1, np.int64)
    cell = np.empty(k)
    placed = 1
    while placed < k:
        cs = centroids[:placed]
        _assign_bounds(x, cs, bounds[: placed + 1])
        total = 0.0
        for j in range(placed):
            cell[j] = _sse_about(x, p1, p2, pw, block, shift, bounds[j], bounds[j + 1], cs[j])
            total += cell[j]
        if not total > 0.0:
            break
        target = uniforms[placed] * total
        j = 0
        while j < placed - 1 and target >= cell[j]:
            target -= cell[j]
            j += 1
        a = bounds[j]
        lo = a + 1
        hi = bounds[j + 1]
        while lo < hi:  # first end t with the D^2 of x[a:t] above the target
            mid = (lo + hi) >> 1
            if _sse_about(x, p1, p2, pw, block, shift, a, mid, cs[j]) > target:
                hi = mid
            else:
                lo = mid + 1
        v = float(x[lo - 1])
        if v == cs[j]:  # only through rounding: take the farthest member instead
            first = float(x[a])
            last = float(x[bounds[j + 1] - 1])
            v = first if cs[j] - first >= last - cs[j] else last
        if v == cs[j]:
            break
        centroids[placed] = v
        placed += 1
        _sort(centroids[:placed])
    return placed
