"""How float32 and 16-bit floats are binned: bit-pattern histograms instead of a sort."""

# float16 and bfloat16 have at most 65,536 bit patterns: one histogram gives every distinct
# value with its count, exactly. Large float32 arrays are binned by their order-preserving
# bit key with the low _BIN_DROP bits dropped (2**20 bins, each 2**-11 of its values'
# magnitude wide): one O(n) pass with exact per-bin sums replaces the O(n log n) sort, and
# labels come from a per-bin table. Clusters can then only split between bins.

from __future__ import annotations

import threading

import numpy as np

from . import _binned_kernels as kernels
from ._data import CHUNK, Data, auto_bins, check_range, weighted

_BIN_DROP = 12  # float32 bins: key >> 12, 2**20 bins, each 2**-11 of its values' magnitude wide


def is_bfloat16(flat: np.ndarray) -> bool:
    """True if every float32 has zero low 16 bits (bfloat16 widened); stops at the first not."""
    bits = flat.view(np.uint32)
    for start in range(0, bits.size, CHUNK):
        if np.any(bits[start : start + CHUNK] & np.uint32(0xFFFF)):
            return False
    return True


def histogram(bits: np.ndarray, drop: int) -> np.ndarray:
    """Counts (65536,) of the 16-bit patterns bits >> drop."""
    counts = np.zeros(1 << 16, np.int64)
    for start in range(0, bits.size, CHUNK):
        part = bits[start : start + CHUNK]
        counts += np.bincount(part >> drop if drop else part, minlength=1 << 16)
    return counts


def from_histogram(counts: np.ndarray, dtype: type) -> Data:
    """Weighted sorted points from a histogram of float16 or bfloat16 bit patterns."""
    patterns = np.arange(1 << 16, dtype=np.uint32)
    with np.errstate(invalid="ignore"):  # signalling NaN patterns; dropped below
        if dtype == np.float16:
            pattern_values = patterns.astype(np.uint16).view(np.float16).astype(np.float64)
        else:
            pattern_values = (patterns << 16).view(np.float32).astype(np.float64)
    used = (counts > 0) & np.isfinite(pattern_values)
    v = pattern_values[used]
    w = counts[used].astype(np.float64)
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    first = np.ones(v.size, bool)
    first[1:] = v[1:] != v[:-1]  # -0.0 and 0.0 are one value
    starts = np.flatnonzero(first)
    return weighted(v[starts], np.add.reduceat(w, starts) if v.size else w)


def _float32_from_keys(keys: np.ndarray) -> np.ndarray:
    """float32 values of order-preserving keys (the inverse of _binned_kernels._float32_key)."""
    negative = keys < np.uint32(0x80000000)
    bits = np.where(negative, ~keys, keys & np.uint32(0x7FFFFFFF)).astype(np.uint32)
    return bits.view(np.float32)


def from_bins(flat: np.ndarray, k: int, count_distinct: bool = True) -> Data | None:
    """One weighted point per non-empty bin of float32 values, with exact sums: O(n), no sort.

    Bins are 2**-11 of their values' magnitude wide, so clusters can only split between bins:
    Lloyd's fixed point over bins, with each centroid the exact mean of its members. Where the
    exact or optimal route would run (at most max(k, auto_bins) distinct values) and a bin
    holds several distinct values (they would be merged), returns None: the caller sorts.
    Without `count_distinct`, more bins than that leave n_distinct a lower bound (uncounted).
    """
    n_bins = 1 << (32 - _BIN_DROP)
    count = np.zeros(n_bins, np.int64)
    first, s1, s2 = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    top = np.zeros(n_bins, np.uint32)
    bits = flat.view(np.uint32)
    total = int(kernels.bin_float32(flat, bits, _BIN_DROP, count, first, s1, s2, top))
    used = np.flatnonzero(count)
    offsets = np.zeros(n_bins + 1, np.int64)
    np.cumsum(count, out=offsets[1:])
    w, first, s1, s2, top = count[used].astype(np.float64), first[used], s1[used], s2[used], \
        top[used]
    del count  # the full-size bin arrays go before the distinct count takes its memory
    counting = None
    if used.size > max(k, auto_bins(total, k)):
        # More bins than any route that needs exact values: binned whatever the distinct
        # count, which a second core counts while this one clusters and labels.
        counting = _count_in_background(bits, offsets, total) if count_distinct else None
        n_distinct, merged = int(used.size), True
    else:
        n_distinct, merged = _distinct_in_bins(bits, offsets, total)
        if merged and n_distinct <= max(k, auto_bins(total, k)):
            return None
    del offsets
    top_values = _float32_from_keys(top).astype(np.float64)
    if used.size:
        check_range(float(first[0]), float(top_values[-1]))
    x = first + s1 / w  # each bin's mean; its values' spread about it is `within`
    within = np.maximum(s2 - s1 * s1 / w, 0.0) if merged else np.zeros(used.size)
    pw = np.concatenate(([0.0], np.cumsum(w)))
    shift = float(x[np.searchsorted(pw, pw[-1] / 2, side="right") - 1]) if used.size else 0.0
    d = x - shift
    p1 = np.concatenate(([0.0], np.cumsum(w * d)))
    p2 = np.concatenate(([0.0], np.cumsum(within + w * d * d)))
    return Data(x, p1, p2, pw, 1, shift, n_distinct, float(total), top_values, float(within.sum()),
                counting)


def _count_in_background(bits: np.ndarray, offsets: np.ndarray, total: int):
    """Start counting the distinct values on another thread; returns a function that waits."""
    box: list[tuple[int, bool]] = []
    worker = threading.Thread(target=lambda: box.append(_distinct_in_bins(bits, offsets, total)),
                              daemon=True)
    worker.start()

    def counting() -> int:
        worker.join()
        return box[0][0]

    return counting


def _distinct_in_bins(bits: np.ndarray, offsets: np.ndarray, total: int) -> tuple[int, bool]:
    """(distinct finite values, whether any bin holds more than one) of binned float32;
    offsets: prefix sums of the per-bin counts."""
    scratch = np.empty(total, np.uint16)
    distinct, merged = kernels.distinct_in_bins(bits, _BIN_DROP, offsets, scratch)
    return int(distinct), bool(merged)


def labels_by_table(flat: np.ndarray, padded: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels of float32 values from a table over the bins of bin_float32: one lookup per value
    except in the few bins that a threshold splits (none when the clustering was binned).

    padded: thresholds (each cluster's largest value but the last's), ascending, float64, padded
    with +inf to a power of two. labels: unsigned ints (n,), OUT, returned.
    """
    n_bins = 1 << (32 - _BIN_DROP)
    lut = np.empty(n_bins, labels.dtype)
    mixed = np.empty(n_bins, np.uint8)
    for start in range(0, n_bins, CHUNK):  # in chunks: the float64 temporaries stay small
        keys = np.arange(start, start + CHUNK, dtype=np.uint32) << np.uint32(_BIN_DROP)
        with np.errstate(invalid="ignore"):  # keys of NaN patterns: no finite value has them
            lowest = _float32_from_keys(keys).astype(np.float64)
            highest = _float32_from_keys(keys | np.uint32((1 << _BIN_DROP) - 1)).astype(np.float64)
            below_lowest = np.searchsorted(padded, lowest, side="left")
            below_highest = np.searchsorted(padded, highest, side="left")
        lut[start:start + CHUNK] = below_lowest
        mixed[start:start + CHUNK] = below_lowest != below_highest
    kernels.label_float32(flat, flat.view(np.uint32), _BIN_DROP, lut, mixed, padded, labels)
    return labels
