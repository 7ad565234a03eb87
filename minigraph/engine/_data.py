"""Prepared values as the routes share them: sorted points with prefix sums (no numba here)."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from minigraph.errors import ClusteringError

CHUNK = 1 << 16  # values labelled / histogrammed per step; bounds temporary memory
MAX_ABS = 1e140  # beyond, sums of squares of up to 1e10 values could overflow float64
_BIN_SPARE = 64  # auto bins per cluster (measured: 8 gave 1.001x optimal at 1e5, 64 1.00001x)
_BIN_CAP = 1 << 18  # at most this many bins unless 4 k is more (the DP fallback is O(k bins log))


class Data(NamedTuple):
    """Finite values, sorted, with the prefix sums the kernels use (layout: _sorted_kernels).

    For binned float32 data each point is a bin of nearby values: x is its mean, pw, p1 and p2
    carry the exact counts and sums of its members, and ``top`` its largest member.
    """

    x: np.ndarray
    p1: np.ndarray
    p2: np.ndarray
    pw: np.ndarray
    block: int
    shift: float
    n_distinct: int
    total: float  # number of finite values
    top: np.ndarray | None = None  # binned: each point's largest member
    within: float = 0.0  # binned: squared spread of the members about their bin's mean
    # binned: waits for the exact distinct count, counted on another thread meanwhile
    # (n_distinct is then a lower bound, already above every threshold that reads it)
    counting: Callable[[], int] | None = None

    @property
    def layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, float]:
        """The kernels' leading arguments: x, p1, p2, pw, block, shift."""
        return self.x, self.p1, self.p2, self.pw, self.block, self.shift


class Fit(NamedTuple):
    """A clustering of prepared data, before labelling."""

    centroids: np.ndarray
    thresholds: np.ndarray  # each cluster's largest value but the last's, float64
    sse: float
    iterations: int
    method: str
    init: str


def check_range(lowest: float, highest: float) -> None:
    """Reject finite values whose squares could overflow the float64 sums."""
    if max(-lowest, highest) > MAX_ABS:
        raise ClusteringError(f"finite values must lie within +-{MAX_ABS:g} to be clustered, "
                              f"got {lowest!r} .. {highest!r}")


def weighted(v: np.ndarray, w: np.ndarray) -> Data:
    """Data for distinct ascending values v with weights w (full prefix sums, block 1)."""
    pw = np.zeros(v.size + 1)
    np.cumsum(w, out=pw[1:])
    shift = float(v[np.searchsorted(pw, pw[-1] / 2, side="right") - 1]) if v.size else 0.0
    d = v - shift
    p1 = np.zeros(v.size + 1)
    p2 = np.zeros(v.size + 1)
    np.cumsum(w * d, out=p1[1:])
    np.cumsum(w * d * d, out=p2[1:])
    return Data(np.ascontiguousarray(v), p1, p2, pw, 1, shift, int(v.size), float(pw[-1]))


def auto_bins(total: float, k: int) -> int:
    """Bins of the auto initialisation, and the most distinct values "auto" solves exactly:
    _BIN_SPARE per cluster, more for large n, capped."""
    return int(max(min(max(_BIN_SPARE * k, 4 * np.sqrt(total)), _BIN_CAP), 4 * k))
