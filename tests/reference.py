"""Slow, obviously correct references for 1-D k-means: brute force and the O(k n^2) DP."""

from __future__ import annotations

import itertools
import math

import numpy as np


def distinct_weighted(values: np.ndarray) -> tuple[list[float], list[int]]:
    """Sorted distinct finite values (as Python floats) and how often each occurs."""
    finite = sorted(float(v) for v in np.asarray(values, np.float64).ravel() if math.isfinite(v))
    points: list[float] = []
    counts: list[int] = []
    for v in finite:
        if points and points[-1] == v:
            counts[-1] += 1
        else:
            points.append(v)
            counts.append(1)
    return points, counts


def group_sse(points: list[float], counts: list[int]) -> float:
    """Sum of squared deviations of a weighted group from its mean (exact summation)."""
    n = sum(counts)
    mean = math.fsum(p * c for p, c in zip(points, counts, strict=True)) / n
    return math.fsum(c * (p - mean) ** 2 for p, c in zip(points, counts, strict=True))


def brute_force_sse(values: np.ndarray, k: int) -> float:
    """Minimum SSE over every split of the sorted distinct values into <= k contiguous groups."""
    points, counts = distinct_weighted(values)
    m = len(points)
    if m == 0:
        return 0.0
    best = math.inf
    for n_cuts in range(min(k, m)):
        for cuts in itertools.combinations(range(1, m), n_cuts):
            edges = (0, *cuts, m)
            sse = math.fsum(
                group_sse(points[a:b], counts[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)
            )
            best = min(best, sse)
    return best


def dp_sse(values: np.ndarray, k: int) -> float:
    """Minimum SSE into <= k clusters by the plain O(k m^2) dynamic program over distinct values."""
    points, counts = distinct_weighted(values)
    m = len(points)
    if m == 0:
        return 0.0
    k = min(k, m)
    cost = [[0.0] * (m + 1) for _ in range(m + 1)]
    for a in range(m):
        for b in range(a + 1, m + 1):
            cost[a][b] = group_sse(points[a:b], counts[a:b])
    best = [cost[0][i] for i in range(m + 1)]  # one cluster over the first i points
    for _ in range(2, k + 1):
        best = [
            min([best[i]] + [best[a] + cost[a][i] for a in range(1, i)]) for i in range(m + 1)
        ]
    return best[m]


def sse_of(values: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> float:
    """SSE of a labelling, summed exactly over the finite values."""
    flat = np.asarray(values, np.float64).ravel()
    lab = np.asarray(labels).ravel()
    finite = np.isfinite(flat)
    diffs = flat[finite] - np.asarray(centroids, np.float64)[lab[finite]]
    return math.fsum(float(d) * float(d) for d in diffs)


def dp_curve(values: np.ndarray, k_max: int) -> list[float]:
    """Minimum SSE with exactly j clusters for j = 1..k_max (0 from the distinct count on), by
    the plain O(k m^2) layered program: layer j over every prefix, its last cell D(j)."""
    points, counts = distinct_weighted(values)
    m = len(points)
    if m == 0:
        return [0.0] * k_max
    cost = [[0.0] * (m + 1) for _ in range(m + 1)]
    for a in range(m):
        for b in range(a + 1, m + 1):
            cost[a][b] = group_sse(points[a:b], counts[a:b])
    layer = [cost[0][i] for i in range(m + 1)]  # j = 1: one cluster over the first i points
    curve = [layer[m]]
    for j in range(2, k_max + 1):
        if j > m:
            curve.append(0.0)
            continue
        layer = [math.inf] * j + [min(layer[a] + cost[a][i] for a in range(j - 1, i))
                                  for i in range(j, m + 1)]
        curve.append(layer[m])
    return curve
