"""Lloyd's algorithm on sorted data and its starting centroids (linear, density, k-means++,
random, and the auto binned optimum)."""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from . import _lloyd_kernels as kernels
from ._data import Data, auto_bins
from ._optimal import optimal_bounds
from ._sorted import means, range_sums

_MAX_ITER = 300  # Lloyd iterations; the 2016 tool (scikit-learn KMeans) used the same cap
_PILOT = 4096  # quantiles sampled to estimate the density

Pilot = Tuple[np.ndarray, np.ndarray]  # (v, cum): see cube_root_density


def lloyd(data: Data, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(centroids, bounds, iterations) of Lloyd's algorithm from sorted `start` (k,), float64.

    `start` is overwritten; empty clusters left at the end are dropped (see the kernel).
    """
    bounds = np.empty(start.size + 1, np.int64)
    iterations, kept = kernels.lloyd(*data.layout, start, bounds, _MAX_ITER)
    return start[:kept], bounds[: kept + 1], int(iterations)


def values_at_ranks(data: Data, ranks: np.ndarray) -> np.ndarray:
    """Values of the given weighted ranks (0 <= rank < total), float64."""
    if data.block == 1:
        idx = np.searchsorted(data.pw, ranks, side="right") - 1
    else:
        idx = ranks.astype(np.int64)
    return data.x[np.clip(idx, 0, data.x.size - 1)].astype(np.float64)


def cube_root_density(data: Data) -> Pilot:
    """(v, cum): evenly ranked values and the integral of density**(1/3) up to each.

    Between neighbours among _PILOT + 1 evenly ranked values the density is mass / width,
    so its cube root integrates to mass**(1/3) * width**(2/3). density**(1/3) is the point
    density of the asymptotically optimal quantiser (Panter & Dite 1951).
    """
    q = int(min(_PILOT, max(data.total // 4, 1)))
    v = values_at_ranks(data, np.linspace(0, data.total - 1, q + 1))
    cum = np.concatenate(([0.0], np.cumsum(np.diff(v) ** (2.0 / 3.0)))) * q ** (-1.0 / 3.0)
    return v, cum


def _density_quantiles(pilot: Pilot, fractions: np.ndarray) -> np.ndarray:
    """Values where the integral of density**(1/3) reaches the given fractions of its total."""
    v, cum = pilot
    keep = np.concatenate(([True], np.diff(cum) > 0))  # np.interp needs increasing abscissae
    return np.interp(fractions * cum[-1], cum[keep], v[keep])


def estimated_sse(data: Data, pilot: Pilot, k: int) -> float:
    """Panter & Dite's (1951) high-resolution estimate of the optimal k-cluster SSE."""
    return data.total * pilot[1][-1] ** 3 / (12.0 * k * k)


def initial_centroids(data: Data, pilot: Pilot, k: int, init: str, seed: int) -> np.ndarray:
    """k sorted starting centroids (float64); duplicates are allowed (Lloyd re-seeds them)."""
    if init == "auto":
        return _binned_optimum(data, pilot, k)
    if init == "linear":
        return np.linspace(float(data.x[0]), float(data.x[-1]), k)
    if init == "density":
        return _density_quantiles(pilot, (np.arange(k) + 0.5) / k)
    rng = np.random.default_rng(seed)
    if init == "random":
        ranks = np.sort(rng.choice(int(data.total), size=k, replace=False)).astype(np.float64)
        return values_at_ranks(data, ranks)
    start = np.empty(k)
    placed = kernels.kmeans_plus_plus(*data.layout, rng.random(k), start)
    start[placed:] = start[placed - 1]
    return start


def density_bins(data: Data, pilot: Pilot, k: int, n_bins: int = 0) -> np.ndarray:
    """Bin bounds (c + 1,) into data's points, spaced by the estimated density**(1/3): the
    bins of the auto initialisation for k clusters (or about n_bins of them, if given)."""
    n_bins = n_bins or auto_bins(data.total, k)
    edges = _density_quantiles(pilot, np.arange(1, n_bins) / n_bins).astype(data.x.dtype)
    # A value repeated across pilot quantiles (an atom, e.g. many exact zeros) gets bin
    # edges on both sides, so the bin optimum can give it a centroid of its own.
    v = pilot[0]
    atoms = np.unique(v[:-1][np.diff(v) == 0]).astype(data.x.dtype)
    cuts: list[Any] = [np.searchsorted(data.x, edges, side="right"), [0, data.x.size]]
    cuts += [np.searchsorted(data.x, atoms, side=side) for side in ("left", "right")]
    return np.unique(np.concatenate(cuts)).astype(np.int64)


def bin_points(data: Data, bins: np.ndarray) -> tuple[Data, float]:
    """Each bin as one weighted point at its mean, and the members' spread about those means.

    Only the between-bin SSE depends on how bins are grouped; the within-bin part is constant.
    """
    w, s1, s2 = range_sums(data, bins)
    p1, p2, pw = (np.concatenate(([0.0], np.cumsum(a))) for a in (s1, s1 * s1 / w, w))
    within = float(np.maximum(s2 - s1 * s1 / w, 0.0).sum())
    return Data(np.empty(0), p1, p2, pw, 1, data.shift, bins.size - 1, data.total), within


def _binned_optimum(data: Data, pilot: Pilot, k: int) -> np.ndarray:
    """Centroids of the exact optimum over bins spaced by the estimated density**(1/3).

    Cluster boundaries can then only fall on bin edges, so the result is near the optimum
    and Lloyd's iterations finish the job (equal-count bins crowd the dense centre and
    starve the tails: measured 1.03-1.12x the optimal MSE instead of 1.0001x).
    """
    bins = density_bins(data, pilot, k)
    points, _ = bin_points(data, bins)
    k_bins = min(k, points.n_distinct)
    bin_bounds = optimal_bounds(points, k_bins, estimated_sse(data, pilot, k_bins))
    start = means(data, bins[bin_bounds])
    return np.concatenate((start, np.full(k - k_bins, start[-1])))
