"""Which route a tensor takes: histogram, bins or sort; exact, optimal or Lloyd; labels."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _binned, _codebook, _lloyd, _optimal, _sorted
from ._data import Data, Fit, auto_bins

BINNED_MIN = 1 << 18  # float32 arrays this large are binned instead of sorted (lloyd, auto)


class Outcome(NamedTuple):
    """What `run` found: the fit, one label per value, and the counts behind the MSE."""

    fit: Fit
    labels: np.ndarray
    n_distinct: int
    total: float


def run(flat: np.ndarray, k: int, method: str, init: str, seed: int) -> Outcome:
    """Cluster flat native-endian float values (options already validated) and label them."""
    data = prepare(flat, k, method)
    fit = _fit(data, k, method, init, seed)
    n_distinct, total, counting = data.n_distinct, data.total, data.counting
    del data  # free the sorted copy before the labels are allocated
    labels = label(flat, fit.thresholds, fit.centroids.size)
    if counting is not None:
        n_distinct = counting()
    return Outcome(fit, labels, n_distinct, total)


def prepare(flat: np.ndarray, k: int, method: str, count_distinct: bool = True) -> Data:
    """Sorted finite values with prefix sums: histogram for 16-bit floats, bins for large
    float32 arrays (unless the exact optimum is asked for), else a sort. Without
    `count_distinct`, binned data's n_distinct may stay a lower bound (_binned.from_bins)."""
    if flat.dtype == np.float16:
        return _binned.from_histogram(_binned.histogram(flat.view(np.uint16), 0), np.float16)
    if flat.dtype == np.float32 and _binned.is_bfloat16(flat):
        return _binned.from_histogram(_binned.histogram(flat.view(np.uint32), 16), np.float32)
    if flat.dtype == np.float32 and flat.size >= BINNED_MIN and method != "optimal":
        binned = _binned.from_bins(flat, k, count_distinct)
        if binned is not None:
            return binned
    return _sorted.from_sort(flat)


def _fit(data: Data, k: int, method: str, init: str, seed: int) -> Fit:
    """Cluster prepared data: exact, optimal or Lloyd's, as the method and data ask."""
    if data.n_distinct <= k:
        exact = _sorted.distinct(data)
        bounds = np.arange(exact.x.size + 1, dtype=np.int64)
        return _finish(exact, exact.x.copy(), bounds, 0, "exact", "")
    pilot = _lloyd.cube_root_density(data)
    if method == "optimal" or (method == "auto" and data.n_distinct <= auto_bins(data.total, k)):
        weighted = _sorted.distinct(data)
        sse = _lloyd.estimated_sse(data, pilot, k)
        bounds = _optimal.optimal_bounds(weighted, k, sse)
        return _finish(weighted, _sorted.means(weighted, bounds), bounds, 0, "optimal", "")
    start = _lloyd.initial_centroids(data, pilot, k, init, seed)
    centroids, bounds, iterations = _lloyd.lloyd(data, start)
    return _finish(data, centroids, bounds, iterations, "lloyd", init)


def _finish(data: Data, centroids: np.ndarray, bounds: np.ndarray, iterations: int, method: str,
            init: str) -> Fit:
    """Attach thresholds (each cluster's largest value) and the SSE."""
    # Binned points add their members' spread about each bin's mean, whatever the partition.
    sse = _sorted.partition_sse(data, bounds, centroids) + data.within
    last = data.x if data.top is None else data.top  # the largest value of each point
    thresholds = last[bounds[1:-1] - 1].astype(np.float64)
    return Fit(centroids, thresholds, sse, iterations, method, init)


def label(flat: np.ndarray, thresholds: np.ndarray, k: int) -> np.ndarray:
    """Labels (flat.size,) of the smallest sufficient unsigned type: the number of thresholds
    (each cluster's largest value) below each value; large float32 arrays by a bin table."""
    labels: np.ndarray = np.zeros(flat.size, _codebook.label_dtype(k))
    if k <= 1:
        return labels
    padded = _codebook.padded_thresholds(thresholds)
    if flat.dtype == np.float32 and flat.size >= BINNED_MIN:
        return _binned.labels_by_table(flat, padded, labels)
    return _codebook.labels_by_search(flat, padded, labels)

