"""Numba kernels of the float32 path: bins of the order-preserving bit key, counts, labels."""

from __future__ import annotations

import numpy as np

from ._codebook_kernels import _rank
from ._jit import jit

# numba's cache is keyed on this file's contents alone (numba/core/caching.py), yet
# label_float32 compiles in _rank from _codebook_kernels.py: its fingerprint here makes every
# change there a change here (checked by tests/test_engine_kernels.py).
DEPENDS_ON = {"_codebook_kernels.py": "d825e1359a70c46f"}


@jit(inline="always")
def _float32_key(u):
    """Order-preserving unsigned key of a float32 bit pattern (-0.0 folded onto +0.0)."""
    if u == np.uint32(0x80000000):
        u = np.uint32(0)
    if u >> np.uint32(31):
        return ~u
    return u | np.uint32(0x80000000)


@jit
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


@jit
def distinct_in_bins(bits, drop, offsets, scratch):
    """Count the distinct finite float32 values and whether any bin (see bin_float32) has two.

    offsets: int64 (bins + 1,), prefix sums of the per-bin counts; scratch: uint16 (finite
    values,), work space. The low key bits of every value are first grouped by bin (a
    counting-sort scatter), then each bin's are counted with a small bitmap that stays in
    cache. O(n + bins). Returns (distinct, merged).
    """
    heads = np.empty(offsets.shape[0] - 1, np.int64)
    for i in range(heads.shape[0]):  # loops, not slice copies: cheaper to compile
        heads[i] = offsets[i]
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
        for q in range(seen.shape[0]):
            seen[q] = 0
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


@jit
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
