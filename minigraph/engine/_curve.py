"""Optimal error for every cluster count at once: one layered DP over the auto route's points."""

from __future__ import annotations

import numpy as np

from . import _lloyd, _route, _sorted
from . import _optimal_kernels as kernels
from ._data import Data

_SPARE = 16  # points per cluster at k_max: the binned optimum is then within ~3e-4 of the
# exact one (the auto route's 64 cost 5x more time for 1e5 values, for no allocation change)
_CAP = 1 << 16


def _curve_bins(data: Data, k_max: int) -> int:
    """Most points the curve is solved over: _SPARE per cluster, more for large n, capped."""
    return int(max(min(max(_SPARE * k_max, 4 * np.sqrt(data.total)), _CAP), 4 * k_max))


def sse_curve(flat: np.ndarray, k_max: int) -> tuple[np.ndarray, float]:
    """(SSE (k_max,) for k = 1..k_max, number of finite values) of flat native float values.

    With at most _curve_bins distinct values the points are the distinct values and the curve
    is the exact optimum. Otherwise they are bins spaced like those "auto" starts Lloyd from
    (density**(1/3), atoms kept apart; each a point at its mean), fewer of them, and the
    curve is the optimum over the bins plus the members' spread within them: an upper bound
    of the optimum.
    """
    # Binned data's distinct count is not needed past the bins it already exceeds.
    data = _route.prepare(flat, k_max, "auto", count_distinct=False)
    curve = np.zeros(k_max)
    if data.total == 0:
        return curve, 0.0
    n_bins = _curve_bins(data, k_max)
    if data.n_distinct <= n_bins:
        points, within = _sorted.distinct(data), 0.0
    else:
        pilot = _lloyd.cube_root_density(data)
        bins = _lloyd.density_bins(data, pilot, k_max, n_bins)
        points, within = _lloyd.bin_points(data, bins)
    kernels.error_curve(points.pw, points.p1, points.p2, k_max, curve)
    curve += within + data.within
    # D(k) is non-increasing and >= 0; the prefix sums' rounding may break either slightly.
    np.maximum(curve, 0.0, out=curve)
    np.minimum.accumulate(curve, out=curve)
    return curve, data.total
