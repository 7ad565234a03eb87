"""Numba kernels of the exact 1-D k-means dynamic programs: layered and penalised."""

# Points are weighted and distinct, given by full prefix sums (block 1 of _sorted_kernels):
# pw, p1, p2 float64 (m + 1,) of the weights, w * (v - shift) and w * (v - shift)**2.

from __future__ import annotations

import numpy as np

from ._jit import jit


@jit(inline="always")
def _interval_cost(pw, p1, p2, a, b):
    """Sum of squares of points a..b-1 about their mean, from full prefix sums."""
    s = p1[b] - p1[a]
    return (p2[b] - p2[a]) - s * s / (pw[b] - pw[a])


@jit
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


@jit
def _encode_splits(opt, r_lo, r_hi, base, bits, offset):
    """Store nondecreasing opt[r_lo..r_hi] (>= base) as unary gaps: d zeros then a one each."""
    pos = offset * 8
    prev = base
    for i in range(r_lo, r_hi + 1):
        pos += opt[i] - prev
        prev = opt[i]
        bits[pos >> 3] |= np.uint8(1 << (pos & 7))
        pos += 1


@jit
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


@jit
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


@jit  # not inlined by numba: 0.12 s less to compile, and LLVM inlines it as fast (measured)
def _beats(pw, p1, p2, f, new, old, r):
    """True if split `new` is at least as good as split `old` for the prefix ending at r."""
    new_cost = f[new] + _interval_cost(pw, p1, p2, new, r)
    return new_cost <= f[old] + _interval_cost(pw, p1, p2, old, r)


@jit
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



@jit
def _knuth_layer(pw, p1, p2, f_prev, f_cur, opt_prev, opt_cur, j, m):
    """Layer j of the DP for rows m down to j, searching a in [opt_prev[i], opt_cur[i + 1]].

    Split points are monotone across layers as well as rows (the cost is Monge: Yao 1980),
    so the windows sum to about m**2 / (2 j**2) evaluations: cheaper than divide and
    conquer once j is past about sqrt(m / (2 log2 m)). Ties go to the smallest a.
    """
    for i in range(m, j - 1, -1):
        lo = max(opt_prev[i], j - 1)
        hi = i - 1 if i == m else min(opt_cur[i + 1], i - 1)
        if lo > hi:  # not expected of a Monge cost; search the whole row rather than guess
            lo = j - 1
            hi = i - 1
        best = np.inf
        best_a = lo
        for a in range(lo, hi + 1):
            v = f_prev[a] + _interval_cost(pw, p1, p2, a, i)
            if v < best:
                best = v
                best_a = a
        f_cur[i] = best
        opt_cur[i] = best_a


@jit
def error_curve(pw, p1, p2, k_max, curve):
    """Minimum SSE of m weighted sorted points into exactly j clusters, for every j <= k_max.

    One layered dynamic program (Wang & Song 2011) whose layer j is the optimum for every
    prefix in j clusters; the last cell of layer j is D(j). Each layer by divide and conquer
    over monotone split points (Grønlund et al. 2017) while j is small, then Knuth's windows
    between the previous layer's split and the next row's (see _knuth_layer): O(m log m)
    per early layer, O(m + m**2 / j**2) per later one; O(m) memory.

    pw, p1, p2: float64 (m + 1,), full prefix sums (see optimal_partition), m >= 1.
    k_max >= 1. curve: float64 (k_max,), OUT: curve[j - 1] = D(j) for j <= m, 0.0 beyond
    (as many clusters as points). Values carry the prefix sums' rounding.
    """
    m = pw.shape[0] - 1
    f_prev = np.empty(m + 1)
    f_cur = np.empty(m + 1)
    for i in range(1, m + 1):
        f_prev[i] = _interval_cost(pw, p1, p2, 0, i)
    curve[0] = f_prev[m]
    opt_prev = np.zeros(m + 1, np.int64)  # layer 1: every prefix is one cluster from 0
    opt_cur = np.zeros(m + 1, np.int64)
    stack = np.empty((128, 4), np.int64)
    log_m = 1
    while (1 << log_m) < m:
        log_m += 1
    top = min(k_max, m - 1)  # m clusters: every point its own, no error (exactly)
    for j in range(2, top + 1):
        if 2 * j * j * log_m > m:
            _knuth_layer(pw, p1, p2, f_prev, f_cur, opt_prev, opt_cur, j, m)
        else:
            _dp_layer(pw, p1, p2, f_prev, f_cur, opt_cur, j, m, j - 1, stack)
        curve[j - 1] = f_cur[m]
        f_prev, f_cur = f_cur, f_prev
        opt_prev, opt_cur = opt_cur, opt_prev
    for j in range(m - 1, k_max):
        curve[j] = 0.0
