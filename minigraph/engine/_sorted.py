"""Sorted data: finite values sorted once, with block prefix sums; sums over partitions of it."""

from __future__ import annotations

import numpy as np

from . import _sorted_kernels as kernels
from . import _twins
from ._data import Data, check_range, weighted

_BLOCK = 64  # prefix sums every 64 sorted values: 0.25 byte per value, range sums in O(64)


def from_sort(flat: np.ndarray) -> Data:
    """Data of a flat float array by sorting a copy: O(n log n), unit weights, block prefix sums."""
    xs = flat.astype(flat.dtype, copy=True)  # float32 stays float32: 4 bytes per value
    xs.sort()
    inf = xs.dtype.type(np.inf)  # a Python float would make searchsorted copy xs as float64
    lo = int(np.searchsorted(xs, -inf, side="right"))
    hi = int(np.searchsorted(xs, inf, side="left"))  # NaN sorts after +inf
    x = xs[lo:hi]
    n = x.size
    if n:
        check_range(float(x[0]), float(x[-1]))
    shift = float(x[n // 2]) if n else 0.0
    p1 = np.empty(n // _BLOCK + 1)
    p2 = np.empty(n // _BLOCK + 1)
    prefix = _twins.block_prefix if _twins.small(n) else kernels.block_prefix
    distinct = int(prefix(x, _BLOCK, shift, p1, p2))
    return Data(x, p1, p2, np.empty(0), _BLOCK, shift, distinct, float(n))


def distinct(data: Data) -> Data:
    """The same data as weighted distinct points (run lengths of the sorted values)."""
    if data.block == 1:
        return data
    v = np.empty(data.n_distinct)
    w = np.empty(data.n_distinct)
    (_twins.run_lengths if _twins.small(data.x.size) else kernels.run_lengths)(data.x, v, w)
    return weighted(v, w)


def means(data: Data, bounds: np.ndarray) -> np.ndarray:
    """Mean of each range of a partition, kept within the range's values."""
    w, s1, _ = range_sums(data, bounds)
    mean = data.shift + s1 / w
    return np.clip(mean, data.x[bounds[:-1]], data.x[bounds[1:] - 1]).astype(np.float64)


def range_sums(data: Data, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weight, sum and sum of squares of (x - shift) over each range of a partition."""
    c = bounds.size - 1
    w, s1, s2 = np.empty(c), np.empty(c), np.empty(c)
    # Weighted points: differences of full prefix sums, O(c), nothing worth compiling.
    (_twins.partition_sums if data.block == 1 else kernels.partition_sums)(
        *data.layout, bounds, w, s1, s2)
    return w, s1, s2


def partition_sse(data: Data, bounds: np.ndarray, centroids: np.ndarray) -> float:
    """Sum of squared distances of the points to their cluster's centroid (direct summation)."""
    small = _twins.small(data.x.size) and centroids.size <= _twins.FEW
    sse = _twins.partition_sse if small else kernels.partition_sse
    return float(sse(data.x, data.pw, data.block, bounds, centroids))
