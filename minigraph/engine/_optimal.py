"""The exact minimum-SSE partition of weighted sorted points: penalised, else layered DP."""

from __future__ import annotations

import numpy as np

from . import _optimal_kernels as kernels
from ._data import Data

_MAX_PENALTIES = 60  # penalised solves before the optimum falls back to the layered DP


def optimal_bounds(data: Data, k: int, sse: float) -> np.ndarray:
    """Partition (k + 1,) of the exact k-optimum of weighted points (data.block == 1).

    `sse` estimates the optimal SSE, so 2 * sse / k the slope of D(c) at k (D ~ c**-2).
    """
    m = data.pw.size - 1
    if k >= m:
        return np.arange(m + 1, dtype=np.int64)
    bounds = _lagrangian_bounds(data.pw, data.p1, data.p2, k, 2.0 * sse / k)
    if bounds is None:
        bounds = np.empty(k + 1, np.int64)
        kernels.optimal_partition(data.pw, data.p1, data.p2, k, bounds)
    return bounds


def _lagrangian_bounds(
    pw: np.ndarray, p1: np.ndarray, p2: np.ndarray, k: int, penalty: float
) -> np.ndarray | None:
    """The k-optimum from penalised problems, or None if no penalty tried gives k clusters.

    The optimal SSE D(c) is convex in the cluster count c, so a penalty between
    D(k) - D(k + 1) and D(k - 1) - D(k) yields k clusters. From the estimate `penalty` the
    penalty is scaled as if D'(c) ~ c**-3 until two solutions bracket k, then set to the
    slope of the chord between the bracketing solutions;
    where D is linear across k (no penalty gives k) this stops and returns None.
    """
    m = pw.size - 1
    f, arg = np.empty(m + 1), np.empty(m + 1, np.int64)
    cand, start = np.empty(m + 1, np.int64), np.empty(m + 1, np.int64)
    if not penalty > 0:
        return None
    fewer = more = None  # (count, sse, penalty) with count < k, resp. > k
    for _ in range(_MAX_PENALTIES):
        count = int(kernels.penalized_partition(pw, p1, p2, penalty, f, arg, cand, start))
        sse = f[m] - penalty * count
        if count == k:
            return _unwind(arg, m, k)
        if fewer is not None and more is not None and count in (fewer[0], more[0]):
            return None  # the chord's slope gave an end of the chord again: D is linear here
        if count < k:
            fewer = (count, sse, penalty)
        else:
            more = (count, sse, penalty)
        if fewer is None or more is None:  # D'(c) ~ c**-3: aim at k, overshooting a little
            penalty *= min(max((count / k) ** 3 * (1.02 if count > k else 0.98), 1 / 64), 64)
        else:
            penalty = (fewer[1] - more[1]) / (more[0] - fewer[0])
    return None


def _unwind(arg: np.ndarray, m: int, k: int) -> np.ndarray:
    """Bounds (k + 1,) of a k-cluster optimum from each prefix's last cluster start `arg`."""
    bounds = np.empty(k + 1, np.int64)
    bounds[k] = m
    for j in range(k, 0, -1):
        bounds[j - 1] = arg[bounds[j]]
    return bounds
