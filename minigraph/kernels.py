"""Numba kernels for 1-D k-means on sorted values: prefix sums, Lloyd, exact DP, labels."""

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

import numba
import numpy as np


def _jit(func=None, *, inline="never"):
    """``numba.njit(cache=True)``, or uncached where numba finds no writable cache directory.

    ``inline="always"`` marks small helpers of hot loops: numba then inlines them in its own
    IR, which LLVM alone did not do for nested helpers (measured 3x slower without).
    Kernels release the GIL, so tensors can be clustered on several threads at once.
    """
    if func is None:
        return lambda f: _jit(f, inline=inline)
    try:
        return numba.njit(cache=True, nogil=True, inline=inline)(func)
    except RuntimeError:
        # numba raises at decoration time when neither __pycache__ beside this file,
        # NUMBA_CACHE_DIR nor the user cache directory is writable (read-only install, no
        # HOME). A shared temporary directory is not used instead: numba's cache files are
        # pickles, and loading pickles others can write is unsafe. Such installs compile anew.
        return numba.njit(cache=False, nogil=True, inline=inline)(func)


@_jit(inline="always")
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


@_jit
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


@_jit
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


@_jit
def partition_sums(x, p1, p2, pw, block, shift, bounds, w, s1, s2):
    """Weight, sum and sum of squares of (x - shift) over each range of `bounds`.

    bounds: int64 (c + 1,), nondecreasing. w, s1, s2: float64 (c,), OUT. O(c * block).
    """
    for j in range(bounds.shape[0] - 1):
        w[j], s1[j], s2[j] = _range_sums(x, p1, p2, pw, block, shift, bounds[j], bounds[j + 1])


@_jit
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


@_jit(inline="always")
def _search_right(x, v, lo, hi):
    """First index i in [lo, hi] with x[i] > v (x sorted), hi if none."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if float(x[mid]) <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_jit
def _assign_bounds(x, centroids, bounds):
    """Nearest-centroid partition of sorted x; a value at a midpoint joins the lower cluster."""
    k = centroids.shape[0]
    n = x.shape[0]
    bounds[0] = 0
    bounds[k] = n
    for j in range(1, k):
        mid = 0.5 * centroids[j - 1] + 0.5 * centroids[j]
        bounds[j] = _search_right(x, mid, bounds[j - 1], n)


@_jit
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


@_jit
def _relocate_empty(x, p1, p2, pw, block, shift, centroids, bounds):
    """Move empty clusters' centroids to the farthest member of the largest-SSE clusters.

    Each empty cluster takes a different donor: the not yet used cluster with the largest
    sum of squares about its centroid that holds two or more distinct values; the centroid
    goes to the donor's member farthest from the donor's centroid. Returns how many moved.
    """
    k = centroids.shape[0]
    sse = np.full(k, -1.0)
    for j in range(k):
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
    centroids.sort()
    return moved


@_jit
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


@_jit
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
        prev[:] = bounds
        centroids.sort()
        _assign_bounds(x, centroids, bounds)
        changed = moved > 0
        for j in range(k + 1):
            if bounds[j] != prev[j]:
                changed = True
        if not changed:
            break
    return iterations, _compact(x, p1, p2, pw, block, shift, centroids, bounds)


@_jit(inline="always")
def _index_at_rank(pw, block, n, rank):
    """Sorted position holding the value of the given weighted rank (0 <= rank < total)."""
    if block != 1:
        return min(max(int(rank), 0), n - 1)
    return min(_search_right(pw, rank, 1, n) - 1, n - 1)


@_jit(inline="always")
def _sse_about(x, p1, p2, pw, block, shift, a, b, c):
    """Sum of squares of x[a:b] about c, from prefix sums."""
    w, s1, s2 = _range_sums(x, p1, p2, pw, block, shift, a, b)
    d = c - shift
    return max(s2 - 2.0 * d * s1 + d * d * w, 0.0)


@_jit
def kmeans_plus_plus(x, p1, p2, pw, block, shift, uniforms, centroids):
    """k-means++ seeding (Arthur & Vassilvitskii 2007) on sorted data.

    Each new centroid is a data value drawn with probability proportional to its squared
    distance to the nearest centroid chosen so far; in 1-D the nearest-centroid cells are
    ranges, so drawing costs O(k + log n * block) via prefix sums. uniforms: float64 (k,) in
    [0, 1), the caller's random numbers. centroids: float64 (k,), OUT sorted in [:placed].
    Returns placed (< k only if fewer distinct values). O(k**2 * (log n + block)).
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
        centroids[:placed].sort()
    return placed


@_jit(inline="always")
def _interval_cost(pw, p1, p2, a, b):
    """Sum of squares of points a..b-1 about their mean, from full prefix sums."""
    s = p1[b] - p1[a]
    return (p2[b] - p2[a]) - s * s / (pw[b] - pw[a])


@_jit
def _dp_layer(pw, p1, p2, f_prev, f_cur, opt, r_lo, r_hi, c_lo, stack):
    """One DP layer: f_cur[i] = min over c_lo <= a < i of f_prev[a] + cost(a, i), r_lo <= i <= r_hi.

    The best split opt[i] is nondecreasing in i (the cost is Monge), so divide and conquer
    over rows needs O((r_hi - r_lo) log n) evaluations; ties go to the smallest a.
    """
    top = 0
    stack[0, 0] = r_lo
    stack[0, 1] = r_hi
    stack[0, 2] = c_lo
    stack[0, 3] = r_hi - 1
    while top >= 0:
        i_lo = stack[top, 0]
        i_hi = stack[top, 1]
        a_lo = stack[top, 2]
        a_hi = stack[top, 3]
        top -= 1
        if i_lo > i_hi:
            continue
        mid = (i_lo + i_hi) >> 1
        best = np.inf
        best_a = a_lo
        for a in range(a_lo, min(a_hi, mid - 1) + 1):
            v = f_prev[a] + _interval_cost(pw, p1, p2, a, mid)
            if v < best:
                best = v
                best_a = a
        f_cur[mid] = best
        opt[mid] = best_a
        top += 1
        stack[top, 0] = i_lo
        stack[top, 1] = mid - 1
        stack[top, 2] = a_lo
        stack[top, 3] = best_a
        top += 1
        stack[top, 0] = mid + 1
        stack[top, 1] = i_hi
        stack[top, 2] = best_a
        stack[top, 3] = a_hi


@_jit
def _encode_splits(opt, r_lo, r_hi, base, bits, offset):
    """Store nondecreasing opt[r_lo..r_hi] (>= base) as unary gaps: d zeros then a one each."""
    pos = offset * 8
    prev = base
    for i in range(r_lo, r_hi + 1):
        pos += opt[i] - prev
        prev = opt[i]
        bits[pos >> 3] |= np.uint8(1 << (pos & 7))
        pos += 1


@_jit
def _decode_split(bits, offset, t, base, popcount):
    """opt of the t-th stored row: base + number of zeros before the (t + 1)-th one bit."""
    seen = 0
    byte = offset
    while seen + popcount[bits[byte]] <= t:
        seen += popcount[bits[byte]]
        byte += 1
    value = int(bits[byte])
    bit = 0
    while True:
        if (value >> bit) & 1:
            if seen == t:
                break
            seen += 1
        bit += 1
    return base + (byte - offset) * 8 + bit - t


@_jit
def optimal_partition(pw, p1, p2, k, bounds):
    """Minimum-SSE partition of m weighted sorted points into k contiguous clusters.

    The dynamic program of Wang & Song (2011, Ckmeans.1d.dp) over layers j = 1..k, each
    layer by divide and conquer over monotone split points (Grønlund et al. 2017): time
    O(k m log m), memory O(m) floats plus every layer's split points packed as unary gaps,
    2 m bits per layer (k * m / 4 bytes) instead of k * m integers.

    pw, p1, p2: float64 (m + 1,), full prefix sums of weights, w * (v - shift) and
    w * (v - shift)**2 of the points. 1 <= k <= m. bounds: int64 (k + 1,), OUT.
    Returns the minimum sum of squares (from prefix sums, so with their rounding).
    """
    m = pw.shape[0] - 1
    bounds[0] = 0
    bounds[k] = m
    if k == 1:
        return _interval_cost(pw, p1, p2, 0, m)
    f_prev = np.empty(m + 1)
    f_cur = np.empty(m + 1)
    for i in range(1, m - k + 2):
        f_prev[i] = _interval_cost(pw, p1, p2, 0, i)
    layer_bytes = (2 * m + 9) // 8
    bits = np.zeros(max(k - 2, 0) * layer_bytes + 1, np.uint8)
    opt = np.empty(m + 1, np.int64)
    stack = np.empty((128, 4), np.int64)
    for j in range(2, k):
        r_lo = j
        r_hi = m - (k - j)
        _dp_layer(pw, p1, p2, f_prev, f_cur, opt, r_lo, r_hi, j - 1, stack)
        _encode_splits(opt, r_lo, r_hi, j - 1, bits, (j - 2) * layer_bytes)
        f_prev, f_cur = f_cur, f_prev
    best = np.inf
    bounds[k - 1] = k - 1  # stays a valid index even if every cost were NaN
    for a in range(k - 1, m):
        v = f_prev[a] + _interval_cost(pw, p1, p2, a, m)
        if v < best:
            best = v
            bounds[k - 1] = a
    popcount = np.zeros(256, np.int64)
    for v in range(1, 256):
        popcount[v] = popcount[v >> 1] + (v & 1)
    for j in range(k - 1, 1, -1):
        bounds[j - 1] = _decode_split(bits, (j - 2) * layer_bytes, bounds[j] - j, j - 1, popcount)
    return best


@_jit(inline="always")
def _beats(pw, p1, p2, f, new, old, r):
    """True if split `new` is at least as good as split `old` for the prefix ending at r."""
    new_cost = f[new] + _interval_cost(pw, p1, p2, new, r)
    return new_cost <= f[old] + _interval_cost(pw, p1, p2, old, r)


@_jit
def penalized_partition(pw, p1, p2, penalty, f, arg, cand, start):
    """Minimum of SSE + penalty * (number of clusters) over all contiguous partitions.

    The Lagrangian relaxation of the k-cluster problem (Aggarwal, Schieber & Tokuyama 1994):
    a partition optimal for some penalty with exactly k clusters is an optimal k-clustering.
    Solved as a least-weight subsequence problem with a concave Monge cost (Hirschberg &
    Larmore 1987): each new split point beats all older ones from some row on, found by
    binary search, so O(m log m) time and O(m) memory.

    pw, p1, p2: float64 (m + 1,), full prefix sums (see optimal_partition). f: float64
    (m + 1,), OUT f[i] = optimum for the first i points. arg: int64 (m + 1,), OUT start of
    the last cluster of that optimum. cand, start: int64 (m + 1,), scratch.
    Returns the number of clusters of the optimum for all m points.
    """
    m = pw.shape[0] - 1
    f[0] = 0.0
    cand[0] = 0
    start[0] = 1
    head = 0
    tail = 1
    for i in range(1, m + 1):
        while head + 1 < tail and start[head + 1] <= i:
            head += 1
        a = cand[head]
        f[i] = f[a] + _interval_cost(pw, p1, p2, a, i) + penalty
        arg[i] = a
        if i == m:
            break
        while tail > head and _beats(pw, p1, p2, f, i, cand[tail - 1], max(start[tail - 1], i + 1)):
            tail -= 1
        if tail == head:
            cand[tail] = i
            start[tail] = i + 1
            tail += 1
            continue
        old = cand[tail - 1]
        lo = max(start[tail - 1], i + 1) + 1
        step = 1  # gallop first: the crossing is usually a cluster's length away, and
        while lo + step <= m and not _beats(pw, p1, p2, f, i, old, lo + step):  # near rows
            lo += step + 1  # are in cache while a plain bisection up to m is not
            step *= 2
        hi = min(lo + step, m + 1)
        while lo < hi:  # first row from which the new split wins
            mid = (lo + hi) >> 1
            if _beats(pw, p1, p2, f, i, old, mid):
                hi = mid
            else:
                lo = mid + 1
        if lo <= m:
            cand[tail] = i
            start[tail] = lo
            tail += 1
    count = 0
    i = m
    while i > 0:
        i = arg[i]
        count += 1
    return count


@_jit(inline="always")
def _rank(thresholds, v):
    """Number of thresholds strictly below v: branch-free binary search over a power-of-two
    sized, +inf padded, ascending array. O(log p)."""
    pos = 0
    h = thresholds.shape[0]
    while h > 1:
        h >>= 1
        if thresholds[pos + h - 1] < v:
            pos += h
    if thresholds[pos] < v:
        pos += 1
    return pos


@_jit
def assign_labels(values, thresholds, labels):
    """Label each value with the number of thresholds strictly below it.

    values: float64 (c,). thresholds: float64 (p,), ascending, p a power of two, padded with
    +inf. labels: unsigned ints (c,), OUT. NaN and +-inf get 0. Branch-free binary search,
    O(c log p).
    """
    for i in range(values.shape[0]):
        v = values[i]
        pos = _rank(thresholds, v)
        if v == np.inf:
            pos = 0
        labels[i] = pos


@_jit(inline="always")
def _float32_key(u):
    """Order-preserving unsigned key of a float32 bit pattern (-0.0 folded onto +0.0)."""
    if u == np.uint32(0x80000000):
        u = np.uint32(0)
    if u >> np.uint32(31):
        return ~u
    return u | np.uint32(0x80000000)


@_jit
def bin_float32(values, bits, drop, count, first, s1, s2, top):
    """Histogram float32 values into bins of their order-preserving bit key, with exact sums.

    values: float32 (n,); bits: the same memory viewed as uint32. A value's bin is its key
    >> drop, so bins are contiguous, ascending value ranges of relative width 2**(drop - 23).
    Per bin, all (2**(32 - drop),), IN/OUT, zero-initialised by the caller: count (int64),
    first (float64, the first value seen, set here), s1 and s2 (float64, sums of value - first
    and of its square: small numbers, so no cancellation), top (uint32, the largest key).
    NaN and +-inf are skipped. Returns the number of finite values. O(n), one pass: what
    replaces the sort for large float32 tensors.
    """
    n_finite = 0
    for i in range(values.shape[0]):
        u = bits[i]
        if (u & np.uint32(0x7F800000)) == np.uint32(0x7F800000):
            continue
        key = _float32_key(u)
        b = key >> drop
        v = float(values[i])
        if count[b] == 0:
            first[b] = v
        d = v - first[b]
        count[b] += 1
        s1[b] += d
        s2[b] += d * d
        if key > top[b]:
            top[b] = key
        n_finite += 1
    return n_finite


@_jit
def distinct_in_bins(bits, drop, offsets, scratch):
    """Count the distinct finite float32 values and whether any bin (see bin_float32) has two.

    offsets: int64 (bins + 1,), prefix sums of the per-bin counts; scratch: uint16 (finite
    values,), work space. The low key bits of every value are first grouped by bin (a
    counting-sort scatter), then each bin's are counted with a small bitmap that stays in
    cache. O(n + bins). Returns (distinct, merged).
    """
    heads = offsets[:-1].copy()
    mask = (np.uint32(1) << np.uint32(drop)) - np.uint32(1)
    for i in range(bits.shape[0]):
        u = bits[i]
        if (u & np.uint32(0x7F800000)) == np.uint32(0x7F800000):
            continue
        key = _float32_key(u)
        b = key >> drop
        scratch[heads[b]] = key & mask
        heads[b] += 1
    seen = np.zeros((1 << drop) // 64, np.uint64)
    total = 0
    merged = False
    for b in range(offsets.shape[0] - 1):
        lo = offsets[b]
        hi = offsets[b + 1]
        if hi - lo <= 1:
            total += hi - lo
            continue
        seen[:] = 0
        here = 0
        for j in range(lo, hi):
            low = scratch[j]
            word = low >> 6
            flag = np.uint64(1) << np.uint64(low & 63)
            if not seen[word] & flag:
                seen[word] |= flag
                here += 1
        total += here
        if here > 1:
            merged = True
    return total, merged


@_jit
def label_float32(values, bits, drop, lut, mixed, thresholds, labels):
    """Label float32 values through a per-bin table, searching only in bins a threshold splits.

    values: float32 (n,); bits: the same memory as uint32; bins as in bin_float32. lut: (bins,)
    the label of every value of a bin, where mixed[b] == 0; mixed: uint8 (bins,). thresholds:
    float64 (p,), ascending, p a power of two, padded with +inf (see assign_labels). labels:
    unsigned ints (n,), OUT; NaN and +-inf get 0. O(n) plus O(log p) per value of a mixed bin.
    """
    for i in range(values.shape[0]):
        u = bits[i]
        if (u & np.uint32(0x7F800000)) == np.uint32(0x7F800000):
            labels[i] = 0
            continue
        b = _float32_key(u) >> drop
        if not mixed[b]:
            labels[i] = lut[b]
            continue
        labels[i] = _rank(thresholds, float(values[i]))


@_jit
def apply_codebook(values, labels, book, out, used):
    """Replace each finite value by its codebook entry and measure the error, in one pass.

    values: float (n,); labels: unsigned ints (n,); book: (k,) in values' dtype; out: (n,) in
    values' dtype, OUT (non-finite values are copied unchanged); used: uint8 (k,), IN/OUT, set
    to 1 for every label of a finite value. Returns (sum of squared errors, sum of squared
    values, largest absolute error, number of finite values), errors in float64. O(n).
    """
    sse = 0.0
    signal = 0.0
    worst = 0.0
    n_finite = 0
    for i in range(values.shape[0]):
        v = values[i]
        if not np.isfinite(v):
            out[i] = v
            continue
        j = labels[i]
        out[i] = book[j]
        used[j] = 1
        d = float(book[j]) - float(v)
        sse += d * d
        signal += float(v) * float(v)
        if abs(d) > worst:
            worst = abs(d)
        n_finite += 1
    return sse, signal, worst, n_finite
