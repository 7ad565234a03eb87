"""Numba kernels that apply a codebook: labels by threshold search, values and their errors."""

from __future__ import annotations

import numpy as np

from ._jit import jit


@jit(inline="always")
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


@jit
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


@jit
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
