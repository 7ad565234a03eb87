"""Cluster float values into a small codebook (1-D k-means): validation, data, labels."""

from __future__ import annotations

import math
import numbers
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np
import numpy.typing as npt

from minigraph.errors import ClusteringError

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["Clustering", "cluster", "substitute", "Errors"]

METHODS = ("auto", "lloyd", "optimal")
INITS = ("auto", "linear", "density", "kmeans++", "random")

_MAX_ITER = 300  # Lloyd iterations; the 2016 tool (scikit-learn KMeans) used the same cap
_BLOCK = 64  # prefix sums every 64 sorted values: 0.25 byte per value, range sums in O(64)
_CHUNK = 1 << 16  # values labelled / histogrammed per step; bounds temporary memory
_PILOT = 4096  # quantiles sampled to estimate the density
_BIN_SPARE = 64  # auto bins per cluster (measured: 8 gave 1.001x optimal at 1e5, 64 1.00001x)
_BIN_CAP = 1 << 18  # at most this many bins unless 4 k is more (the DP fallback is O(k bins log))
_MAX_PENALTIES = 60  # penalised solves before the optimum falls back to the layered DP
_MAX_ABS = 1e140  # beyond, sums of squares of up to 1e10 values could overflow float64
_FLOAT_KINDS = (np.float16, np.float32, np.float64)
_BIN_DROP = 12  # float32 bins: key >> 12, 2**20 bins, each 2**-11 of its values' magnitude wide
_BINNED_MIN = 1 << 18  # float32 arrays this large are binned instead of sorted (lloyd, auto)


@dataclass(frozen=True, eq=False)
class Clustering:
    """Result of `cluster`: a codebook and one label per input value.

    Attributes
    ----------
    centroids : ndarray of shape (k',), float64
        Strictly ascending codebook, k' <= n_clusters and k' <= n_distinct.
    labels : ndarray of the input's shape, uint8 / uint16 / uint32
        Index into `centroids` per value (the smallest unsigned type holding k' - 1);
        0 and meaningless where the value is NaN or +-inf.
    mse : float
        Mean squared error over the finite values (0.0 if there are none).
    iterations : int
        Lloyd iterations run (0 for "exact" and "optimal").
    method : str
        What ran: "exact" (at most n_clusters distinct values), "optimal" or "lloyd".
    n_distinct : int
        Number of distinct finite values in the input (-0.0 and 0.0 count as one).
    init : str
        Lloyd's initialisation ("" when Lloyd did not run).
    """

    centroids: npt.NDArray[np.float64]
    labels: npt.NDArray[np.unsignedinteger[Any]]
    mse: float
    iterations: int
    method: str
    n_distinct: int
    init: str = ""

    def reconstruct(self, values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
        """Replace each value by its centroid, keeping NaN and +-inf.

        Parameters
        ----------
        values : ndarray of the clustered shape, float16 / float32 / float64
            The values that were clustered (their dtype sets the output's).

        Returns
        -------
        ndarray of the same shape and dtype
            Centroids rounded to ``values.dtype`` at each label; non-finite entries copied.

        Raises
        ------
        ClusteringError
            If `values` has another shape than the labels or is not a float array.
        """
        values = np.asarray(values)
        if values.shape != self.labels.shape or values.dtype.kind != "f":
            raise ClusteringError(
                f"reconstruct expects float values of shape {self.labels.shape}, "
                f"got {values.dtype} of shape {values.shape}"
            )
        codebook = self.centroids.astype(values.dtype)
        if codebook.size == 0:
            return values.copy()
        flat = values.reshape(-1)
        labels = self.labels.reshape(-1)
        out = np.empty(flat.shape, values.dtype)
        for start in range(0, flat.size, _CHUNK):
            part = slice(start, start + _CHUNK)
            out[part] = codebook[labels[part]]
            bad = ~np.isfinite(flat[part])
            out[part][bad] = flat[part][bad]
        return out.reshape(values.shape)


class _Data(NamedTuple):
    """Finite values, sorted, with the prefix sums the kernels use (layout: see kernels).

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
    def layout(self) -> tuple:
        """The kernels' leading arguments: x, p1, p2, pw, block, shift."""
        return self.x, self.p1, self.p2, self.pw, self.block, self.shift


def cluster(
    values: npt.ArrayLike,
    n_clusters: int = 256,
    *,
    method: str = "auto",
    init: str = "auto",
    seed: int = 0,
) -> Clustering:
    """Cluster the finite values of an array into at most `n_clusters` centroids (1-D k-means).

    Parameters
    ----------
    values : ndarray of any shape, float16 / float32 / float64
        Values to cluster; NaN and +-inf are left out and keep their positions. float32
        whose low 16 bits are all zero (bfloat16 widened) is histogrammed like float16.
    n_clusters : int
        Maximum number of centroids, >= 1.
    method : {"auto", "lloyd", "optimal"}
        "optimal": the exact minimum-MSE clustering (a penalised dynamic program, about
        O(n log n) per penalty tried for n distinct values; an O(k n log n) layered one
        where no penalty gives exactly k clusters). "lloyd": Lloyd's algorithm from `init`.
        "auto": "optimal" when the distinct values are no more than the bins "auto" init
        would use (64 k, at least 4 sqrt(n), at most 2**18), else "lloyd" from `init`.
    init : {"auto", "linear", "density", "kmeans++", "random"}
        Lloyd's start (unused by "optimal"). "auto": the exact optimum over bins spaced by
        the estimated density**(1/3). "linear": evenly spaced over [min, max] (Deep
        Compression). "density": quantiles of density**(1/3). "kmeans++": D^2 sampling.
        "random": values at distinct positions drawn uniformly (the 2016 tool's default).
    seed : int
        Seed (>= 0) of the numpy Generator behind "kmeans++" and "random".

    Returns
    -------
    Clustering
        Centroids, labels, MSE and what ran. With at most `n_clusters` distinct finite
        values every one is its own centroid ("exact", zero error). Lloyd's empty clusters
        are re-seeded while it iterates and dropped if still empty at the end.

    Raises
    ------
    ClusteringError
        If `n_clusters` is not an integer >= 1, `method`, `init` or `seed` is invalid,
        `values` is not float16 / float32 / float64, or a finite value exceeds 1e140 in
        magnitude (sums of squares could overflow).
    """
    k = _check_k(n_clusters)
    _check_choice("method", method, METHODS)
    _check_choice("init", init, INITS)
    _check_seed(seed)
    array = np.asarray(values)
    if array.dtype.type not in _FLOAT_KINDS:
        raise ClusteringError(f"values must be float16, float32 or float64, got {array.dtype}")
    from minigraph import kernels  # numba loads here, not at import

    flat = array.reshape(-1)
    if not flat.dtype.isnative:
        flat = flat.astype(flat.dtype.newbyteorder("="))
    data = _prepare(flat, kernels, k, method)
    fit = _fit(data, k, method, init, seed, kernels)
    n_distinct, total, counting = data.n_distinct, data.total, data.counting
    del data  # free the sorted copy before the labels are allocated
    labels = _label(flat, fit.thresholds, fit.centroids.size, kernels).reshape(array.shape)
    if counting is not None:
        n_distinct = counting()
    mse = fit.sse / total if total > 0 else 0.0
    return Clustering(fit.centroids, labels, mse, fit.iterations, fit.method, n_distinct, fit.init)


class _Fit(NamedTuple):
    """A clustering of prepared data, before labelling."""

    centroids: np.ndarray
    thresholds: np.ndarray  # each cluster's largest value but the last's, float64
    sse: float
    iterations: int
    method: str
    init: str


def _check_k(n_clusters: object) -> int:
    """n_clusters as an int >= 1 (bool and non-integers rejected)."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral):
        raise ClusteringError(f"n_clusters must be an integer >= 1, got {n_clusters!r}")
    if n_clusters < 1:
        raise ClusteringError(f"n_clusters must be an integer >= 1, got {n_clusters!r}")
    return int(n_clusters)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Reject a value that is not one of the named choices."""
    if not isinstance(value, str) or value not in choices:
        raise ClusteringError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_seed(seed: object) -> None:
    """Reject a seed numpy's Generator would not take."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ClusteringError(f"seed must be an integer >= 0, got {seed!r}")


def _prepare(flat: np.ndarray, kernels: ModuleType, k: int, method: str) -> _Data:
    """Sorted finite values with prefix sums: histogram for 16-bit floats, bins for large
    float32 arrays (unless the exact optimum is asked for), else a sort."""
    if flat.dtype == np.float16:
        return _from_histogram(_histogram(flat.view(np.uint16), 0), np.float16)
    if flat.dtype == np.float32 and _is_bfloat16(flat):
        return _from_histogram(_histogram(flat.view(np.uint32), 16), np.float32)
    if flat.dtype == np.float32 and flat.size >= _BINNED_MIN and method != "optimal":
        binned = _from_bins(flat, kernels, k)
        if binned is not None:
            return binned
    xs = flat.astype(flat.dtype, copy=True)  # float32 stays float32: 4 bytes per value
    xs.sort()
    inf = xs.dtype.type(np.inf)  # a Python float would make searchsorted copy xs as float64
    lo = int(np.searchsorted(xs, -inf, side="right"))
    hi = int(np.searchsorted(xs, inf, side="left"))  # NaN sorts after +inf
    x = xs[lo:hi]
    n = x.size
    if n and max(-float(x[0]), float(x[-1])) > _MAX_ABS:
        raise ClusteringError(f"finite values must lie within +-{_MAX_ABS:g} to be clustered, "
                              f"got {float(x[0])!r} .. {float(x[-1])!r}")
    shift = float(x[n // 2]) if n else 0.0
    p1 = np.empty(n // _BLOCK + 1)
    p2 = np.empty(n // _BLOCK + 1)
    distinct = int(kernels.block_prefix(x, _BLOCK, shift, p1, p2))
    return _Data(x, p1, p2, np.empty(0), _BLOCK, shift, distinct, float(n))


def _float32_from_keys(keys: np.ndarray) -> np.ndarray:
    """float32 values of order-preserving keys (the inverse of kernels._float32_key)."""
    negative = keys < np.uint32(0x80000000)
    bits = np.where(negative, ~keys, keys & np.uint32(0x7FFFFFFF)).astype(np.uint32)
    return bits.view(np.float32)


def _from_bins(flat: np.ndarray, kernels: ModuleType, k: int) -> _Data | None:
    """One weighted point per non-empty bin of float32 values, with exact sums: O(n), no sort.

    Bins are 2**-11 of their values' magnitude wide, so clusters can only split between bins:
    Lloyd's fixed point over bins, with each centroid the exact mean of its members. Where the
    exact or optimal route would run and a bin holds several distinct values (they would be
    merged), returns None and the caller sorts instead.
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
    if used.size > max(k, _n_bins(total, k)):
        # More bins than any route that needs exact values: binned whatever the distinct
        # count, which a second core counts while this one clusters and labels.
        box: list[tuple[int, bool]] = []
        worker = threading.Thread(target=lambda: box.append(
            _distinct_in_bins(bits, offsets, total, kernels)), daemon=True)
        worker.start()

        def counting() -> int:
            worker.join()
            return box[0][0]

        n_distinct, merged = int(used.size), True
    else:
        n_distinct, merged = _distinct_in_bins(bits, offsets, total, kernels)
        if merged and n_distinct <= max(k, _n_bins(total, k)):
            return None
    del offsets
    top_values = _float32_from_keys(top).astype(np.float64)
    if used.size and max(-float(first[0]), float(top_values[-1])) > _MAX_ABS:
        raise ClusteringError(f"finite values must lie within +-{_MAX_ABS:g} to be clustered, "
                              f"got {float(first[0])!r} .. {float(top_values[-1])!r}")
    x = first + s1 / w  # each bin's mean; its values' spread about it is `within`
    within = np.maximum(s2 - s1 * s1 / w, 0.0) if merged else np.zeros(used.size)
    pw = np.concatenate(([0.0], np.cumsum(w)))
    shift = float(x[np.searchsorted(pw, pw[-1] / 2, side="right") - 1]) if used.size else 0.0
    d = x - shift
    p1 = np.concatenate(([0.0], np.cumsum(w * d)))
    p2 = np.concatenate(([0.0], np.cumsum(within + w * d * d)))
    return _Data(x, p1, p2, pw, 1, shift, n_distinct, float(total), top_values, float(within.sum()),
                 counting)


def _distinct_in_bins(bits: np.ndarray, offsets: np.ndarray, total: int,
                      kernels: ModuleType) -> tuple[int, bool]:
    """(distinct finite values, whether any bin holds more than one) of binned float32;
    offsets: prefix sums of the per-bin counts."""
    scratch = np.empty(total, np.uint16)
    distinct, merged = kernels.distinct_in_bins(bits, _BIN_DROP, offsets, scratch)
    return int(distinct), bool(merged)


def _is_bfloat16(flat: np.ndarray) -> bool:
    """True if every float32 has zero low 16 bits (bfloat16 widened); stops at the first not."""
    bits = flat.view(np.uint32)
    for start in range(0, bits.size, _CHUNK):
        if np.any(bits[start : start + _CHUNK] & np.uint32(0xFFFF)):
            return False
    return True


def _histogram(bits: np.ndarray, drop: int) -> np.ndarray:
    """Counts (65536,) of the 16-bit patterns bits >> drop."""
    counts = np.zeros(1 << 16, np.int64)
    for start in range(0, bits.size, _CHUNK):
        part = bits[start : start + _CHUNK]
        counts += np.bincount(part >> drop if drop else part, minlength=1 << 16)
    return counts


def _from_histogram(counts: np.ndarray, dtype: type) -> _Data:
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
    return _weighted(v[starts], np.add.reduceat(w, starts) if v.size else w)


def _weighted(v: np.ndarray, w: np.ndarray) -> _Data:
    """_Data for distinct ascending values v with weights w (full prefix sums, block 1)."""
    pw = np.zeros(v.size + 1)
    np.cumsum(w, out=pw[1:])
    shift = float(v[np.searchsorted(pw, pw[-1] / 2, side="right") - 1]) if v.size else 0.0
    d = v - shift
    p1 = np.zeros(v.size + 1)
    p2 = np.zeros(v.size + 1)
    np.cumsum(w * d, out=p1[1:])
    np.cumsum(w * d * d, out=p2[1:])
    return _Data(np.ascontiguousarray(v), p1, p2, pw, 1, shift, int(v.size), float(pw[-1]))


def _distinct(data: _Data, kernels: ModuleType) -> _Data:
    """The same data as weighted distinct points (run lengths of the sorted values)."""
    if data.block == 1:
        return data
    v = np.empty(data.n_distinct)
    w = np.empty(data.n_distinct)
    kernels.run_lengths(data.x, v, w)
    return _weighted(v, w)


def _fit(data: _Data, k: int, method: str, init: str, seed: int, kernels: ModuleType) -> _Fit:
    """Cluster prepared data: exact, optimal or Lloyd's, as the method and data ask."""
    if data.n_distinct <= k:
        exact = _distinct(data, kernels)
        bounds = np.arange(exact.x.size + 1, dtype=np.int64)
        return _finish(exact, exact.x.copy(), bounds, 0, "exact", "", kernels)
    pilot = _cube_root_density(data)
    if method == "optimal" or (method == "auto" and data.n_distinct <= _n_bins(data.total, k)):
        weighted = _distinct(data, kernels)
        bounds = _optimal_bounds(weighted, k, _estimated_sse(data, pilot, k), kernels)
        means = _means(weighted, bounds, kernels)
        return _finish(weighted, means, bounds, 0, "optimal", "", kernels)
    start = _initial_centroids(data, pilot, k, init, seed, kernels)
    bounds = np.empty(k + 1, np.int64)
    iterations, kept = kernels.lloyd(*data.layout, start, bounds, _MAX_ITER)
    return _finish(data, start[:kept], bounds[: kept + 1], int(iterations), "lloyd", init, kernels)


def _finish(data: _Data, centroids, bounds, iterations: int, method: str, init: str,
            kernels: ModuleType) -> _Fit:
    """Attach thresholds (each cluster's largest value) and the SSE."""
    # Binned points add their members' spread about each bin's mean, whatever the partition.
    sse = float(kernels.partition_sse(data.x, data.pw, data.block, bounds, centroids))
    sse += data.within
    last = data.x if data.top is None else data.top  # the largest value of each point
    thresholds = last[bounds[1:-1] - 1].astype(np.float64)
    return _Fit(centroids, thresholds, sse, iterations, method, init)


def _optimal_bounds(data: _Data, k: int, sse: float, kernels: ModuleType) -> np.ndarray:
    """Partition (k + 1,) of the exact k-optimum of weighted points (data.block == 1).

    `sse` estimates the optimal SSE, so 2 * sse / k the slope of D(c) at k (D ~ c**-2).
    """
    m = data.pw.size - 1
    if k >= m:
        return np.arange(m + 1, dtype=np.int64)
    bounds = _lagrangian_bounds(data.pw, data.p1, data.p2, k, 2.0 * sse / k, kernels)
    if bounds is None:
        bounds = np.empty(k + 1, np.int64)
        kernels.optimal_partition(data.pw, data.p1, data.p2, k, bounds)
    return bounds


def _lagrangian_bounds(
    pw: np.ndarray, p1: np.ndarray, p2: np.ndarray, k: int, penalty: float, kernels: ModuleType
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
            bounds = np.empty(k + 1, np.int64)
            bounds[k] = m
            for j in range(k, 0, -1):
                bounds[j - 1] = arg[bounds[j]]
            return bounds
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


def _means(data: _Data, bounds: np.ndarray, kernels: ModuleType) -> np.ndarray:
    """Mean of each range of a partition, kept within the range's values."""
    c = bounds.size - 1
    w, s1, s2 = np.empty(c), np.empty(c), np.empty(c)
    kernels.partition_sums(*data.layout, bounds, w, s1, s2)
    means = data.shift + s1 / w
    return np.clip(means, data.x[bounds[:-1]], data.x[bounds[1:] - 1]).astype(np.float64)


def _n_bins(total: float, k: int) -> int:
    """Bins of the auto initialisation: _BIN_SPARE per cluster, more for large n, capped."""
    return int(max(min(max(_BIN_SPARE * k, 4 * np.sqrt(total)), _BIN_CAP), 4 * k))


def _values_at_ranks(data: _Data, ranks: np.ndarray) -> np.ndarray:
    """Values of the given weighted ranks (0 <= rank < total), float64."""
    if data.block == 1:
        idx = np.searchsorted(data.pw, ranks, side="right") - 1
    else:
        idx = ranks.astype(np.int64)
    return data.x[np.clip(idx, 0, data.x.size - 1)].astype(np.float64)


def _cube_root_density(data: _Data) -> tuple[np.ndarray, np.ndarray]:
    """(v, cum): evenly ranked values and the integral of density**(1/3) up to each.

    Between neighbours among _PILOT + 1 evenly ranked values the density is mass / width,
    so its cube root integrates to mass**(1/3) * width**(2/3). density**(1/3) is the point
    density of the asymptotically optimal quantiser (Panter & Dite 1951).
    """
    q = int(min(_PILOT, max(data.total // 4, 1)))
    v = _values_at_ranks(data, np.linspace(0, data.total - 1, q + 1))
    cum = np.concatenate(([0.0], np.cumsum(np.diff(v) ** (2.0 / 3.0)))) * q ** (-1.0 / 3.0)
    return v, cum


def _density_quantiles(pilot: tuple[np.ndarray, np.ndarray], fractions: np.ndarray) -> np.ndarray:
    """Values where the integral of density**(1/3) reaches the given fractions of its total."""
    v, cum = pilot
    keep = np.concatenate(([True], np.diff(cum) > 0))  # np.interp needs increasing abscissae
    return np.interp(fractions * cum[-1], cum[keep], v[keep])


def _estimated_sse(data: _Data, pilot: tuple[np.ndarray, np.ndarray], k: int) -> float:
    """Panter & Dite's (1951) high-resolution estimate of the optimal k-cluster SSE."""
    return data.total * pilot[1][-1] ** 3 / (12.0 * k * k)


def _initial_centroids(data: _Data, pilot, k: int, init: str, seed: int, kernels) -> np.ndarray:
    """k sorted starting centroids (float64); duplicates are allowed (Lloyd re-seeds them)."""
    if init == "auto":
        return _binned_optimum(data, pilot, k, kernels)
    if init == "linear":
        return np.linspace(float(data.x[0]), float(data.x[-1]), k)
    if init == "density":
        return _density_quantiles(pilot, (np.arange(k) + 0.5) / k)
    rng = np.random.default_rng(seed)
    if init == "random":
        ranks = np.sort(rng.choice(int(data.total), size=k, replace=False)).astype(np.float64)
        return _values_at_ranks(data, ranks)
    start = np.empty(k)
    placed = kernels.kmeans_plus_plus(*data.layout, rng.random(k), start)
    start[placed:] = start[placed - 1]
    return start


def _binned_optimum(data: _Data, pilot, k: int, kernels: ModuleType) -> np.ndarray:
    """Centroids of the exact optimum over bins spaced by the estimated density**(1/3).

    Cluster boundaries can then only fall on bin edges, so the result is near the optimum
    and Lloyd's iterations finish the job (equal-count bins crowd the dense centre and
    starve the tails: 1.03-1.12x the optimal MSE instead of 1.0001x, issue 3).
    """
    n_bins = _n_bins(data.total, k)
    edges = _density_quantiles(pilot, np.arange(1, n_bins) / n_bins).astype(data.x.dtype)
    # A value repeated across pilot quantiles (an atom, e.g. many exact zeros) gets bin
    # edges on both sides, so the bin optimum can give it a centroid of its own.
    v = pilot[0]
    atoms = np.unique(v[:-1][np.diff(v) == 0]).astype(data.x.dtype)
    cuts = [np.searchsorted(data.x, edges, side="right"), [0, data.x.size]]
    cuts += [np.searchsorted(data.x, atoms, side=side) for side in ("left", "right")]
    bins = np.unique(np.concatenate(cuts)).astype(np.int64)
    c = bins.size - 1
    w, s1, s2 = np.empty(c), np.empty(c), np.empty(c)
    kernels.partition_sums(*data.layout, bins, w, s1, s2)
    # Each bin becomes one point at its mean: only the between-bin SSE depends on the split.
    p1, p2, pw = (np.concatenate(([0.0], np.cumsum(a))) for a in (s1, s1 * s1 / w, w))
    points = _Data(np.empty(0), p1, p2, pw, 1, data.shift, c, data.total)
    k_bins = min(k, c)
    bin_bounds = _optimal_bounds(points, k_bins, _estimated_sse(data, pilot, k_bins), kernels)
    start = _means(data, bins[bin_bounds], kernels)
    return np.concatenate((start, np.full(k - k_bins, start[-1])))


def _label_dtype(k: int) -> type:
    """Smallest unsigned integer type holding k - 1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if k - 1 <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def _label_float32(flat: np.ndarray, padded: np.ndarray, labels: np.ndarray,
                   kernels: ModuleType) -> np.ndarray:
    """Labels of float32 values from a table over the bins of bin_float32: one lookup per value
    except in the few bins that a threshold splits (none when the clustering was binned)."""
    n_bins = 1 << (32 - _BIN_DROP)
    lut = np.empty(n_bins, labels.dtype)
    mixed = np.empty(n_bins, np.uint8)
    for start in range(0, n_bins, _CHUNK):  # in chunks: the float64 temporaries stay small
        keys = np.arange(start, start + _CHUNK, dtype=np.uint32) << np.uint32(_BIN_DROP)
        with np.errstate(invalid="ignore"):  # keys of NaN patterns: no finite value has them
            lowest = _float32_from_keys(keys).astype(np.float64)
            highest = _float32_from_keys(keys | np.uint32((1 << _BIN_DROP) - 1)).astype(np.float64)
            below_lowest = np.searchsorted(padded, lowest, side="left")
            below_highest = np.searchsorted(padded, highest, side="left")
        lut[start:start + _CHUNK] = below_lowest
        mixed[start:start + _CHUNK] = below_lowest != below_highest
    kernels.label_float32(flat, flat.view(np.uint32), _BIN_DROP, lut, mixed, padded, labels)
    return labels


def _label(flat: np.ndarray, thresholds: np.ndarray, k: int, kernels: ModuleType) -> np.ndarray:
    """Labels (flat.size,) by branch-free search of each cluster's largest value."""
    labels = np.zeros(flat.size, _label_dtype(k))
    if k <= 1:
        return labels
    size = 1 << int(thresholds.size - 1).bit_length()
    padded = np.full(size, np.inf)
    padded[: thresholds.size] = thresholds
    if flat.dtype == np.float32 and flat.size >= _BINNED_MIN:
        return _label_float32(flat, padded, labels, kernels)
    buffer = np.empty(min(_CHUNK, flat.size))
    for start in range(0, flat.size, _CHUNK):
        part = flat[start : start + _CHUNK]
        chunk = buffer[: part.size]
        with np.errstate(invalid="ignore"):  # widening a signalling NaN raises the flag
            chunk[:] = part
        kernels.assign_labels(chunk, padded, labels[start : start + part.size])
    return labels


class Errors(NamedTuple):
    """How far substituted values are from the originals, over the finite values."""

    mse: float
    max_abs_error: float
    sqnr_db: float | None  # None when there is no error (or no signal)
    distinct: int  # distinct codebook values in use


def substitute(values: np.ndarray, labels: np.ndarray,
               codebook: np.ndarray) -> tuple[np.ndarray, Errors]:
    """Replace each finite value by its label's codebook entry, in one pass, and measure it.

    Parameters
    ----------
    values : ndarray of shape (n,), float16 / float32 / float64
    labels : ndarray of shape (n,), unsigned ints, each < codebook.size for finite values
    codebook : ndarray of shape (k,), float64; rounded to values.dtype here

    Returns
    -------
    (ndarray of shape (n,) and values' dtype, Errors)
        NaN and ±Inf are copied unchanged; the errors are over finite values, in float64.
    """
    from minigraph import kernels

    with np.errstate(over="ignore"):  # entries beyond the dtype's range: never labelled here
        book = codebook.astype(values.dtype)
    # numba has no float16 arithmetic: such tensors go through float32, which holds them exactly.
    wide = np.float32 if values.dtype == np.float16 else values.dtype
    source = values.astype(wide, copy=False)
    new = np.empty(values.shape, wide)
    used = np.zeros(book.size, np.uint8)
    sse, signal, worst, count = kernels.apply_codebook(source, labels, book.astype(wide), new,
                                                       used)
    new = new.astype(values.dtype, copy=False)
    # Logarithms taken apart: the ratio of a subnormal signal to a large error underflows to 0.
    sqnr = 10.0 * (math.log10(signal) - math.log10(sse)) if sse > 0 and signal > 0 else None
    distinct = int(np.unique(book[used.astype(bool)]).size)
    return new, Errors(sse / count if count else 0.0, worst, sqnr, distinct)
