"""The engine's public face: `cluster`, its result, `substitute`, and the one option validator.

Nothing here imports numba: the private route modules (and their kernels) load on the first
call, so importing minigraph stays cheap for commands that never cluster.
"""

from __future__ import annotations

import numbers
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple

import numpy as np
import numpy.typing as npt

from minigraph.errors import ClusteringError

from ._data import CHUNK

__all__ = ["Clustering", "Errors", "METHODS", "INITS", "check_options", "cluster", "error_curve",
           "substitute", "kernels_preferred"]

METHODS = ("auto", "lloyd", "optimal")
INITS = ("auto", "linear", "density", "kmeans++", "random")
_FLOAT_KINDS = (np.float16, np.float32, np.float64)


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
        for start in range(0, flat.size, CHUNK):
            part = slice(start, start + CHUNK)
            out[part] = codebook[labels[part]]
            bad = ~np.isfinite(flat[part])
            out[part][bad] = flat[part][bad]
        return out.reshape(values.shape)


class Errors(NamedTuple):
    """How far substituted values are from the originals, over the finite values."""

    mse: float
    max_abs_error: float
    sqnr_db: float | None  # None when there is no error (or no signal)
    distinct: int  # distinct codebook values in use


def check_options(*, n_clusters: object = 256, method: object = "auto", init: object = "auto",
                  seed: object = 0, workers: object = None, min_n_weights: object = 0) -> None:
    """Reject a bad clustering option, with one wording wherever it is checked.

    Parameters
    ----------
    n_clusters : int
        Maximum number of centroids: an integer >= 1 (bool is not an integer here).
    method : str
        One of `METHODS`.
    init : str
        One of `INITS`.
    seed : int
        Seed of the random initialisations: an integer >= 0 (what numpy's Generator takes).
    workers : int or None
        Tensors clustered at once: None (the default) or an integer >= 1.
    min_n_weights : int
        Smallest tensor clustered: an integer >= 0.

    Raises
    ------
    ClusteringError
        Naming the first bad option, what it must be and the value given.
    """
    _check_integer("n_clusters", n_clusters, 1)
    _check_choice("method", method, METHODS)
    _check_choice("init", init, INITS)
    _check_integer("seed", seed, 0)
    if workers is not None:
        _check_integer("workers", workers, 1)
    _check_integer("min_n_weights", min_n_weights, 0)


def _check_integer(name: str, value: object, lowest: int) -> None:
    """Reject anything but an integer >= lowest (bool and integral floats included)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lowest:
        raise ClusteringError(f"{name} must be an integer >= {lowest}, got {value!r}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Reject a value that is not one of the named choices."""
    if not isinstance(value, str) or value not in choices:
        raise ClusteringError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


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
        If an option fails `check_options`, `values` is not float16 / float32 / float64,
        or a finite value exceeds 1e140 in magnitude (sums of squares could overflow).
    """
    check_options(n_clusters=n_clusters, method=method, init=init, seed=seed)
    array, flat = _float_values(values)
    from ._route import run  # numba and the kernels load here, not at import

    done = run(flat, int(n_clusters), method, init, seed)
    fit = done.fit
    mse = fit.sse / done.total if done.total > 0 else 0.0
    return Clustering(fit.centroids, done.labels.reshape(array.shape), mse, fit.iterations,
                      fit.method, done.n_distinct, fit.init)


def error_curve(values: npt.ArrayLike, k_max: int = 256) -> npt.NDArray[np.float64]:
    """Minimum MSE of clustering the finite values into k clusters, for every k = 1..k_max.

    One layered dynamic program gives every k at once: D(j) is the last cell of layer j.
    With at most ``16 * k_max`` distinct finite values (or 4 sqrt(n), up to 65,536) it runs
    over the distinct values and the curve is the exact optimum that
    ``cluster(method="optimal")`` reaches at every k. Otherwise it runs over that many bins
    spaced like the "auto" method's (by density**(1/3)), and the curve is an upper bound of
    the optimum (clusters split only between bins): measured within 0.14% of "auto"'s MSE at
    k = 256 and 0.01% at k <= 64 on 1e5 and 1e6 trained-like values. Cost: at most about
    2x one ``cluster(values, 256)`` (tests/bench/bench_budget.py).

    Parameters
    ----------
    values : ndarray of any shape, float16 / float32 / float64
        NaN and +-inf are left out, as in `cluster`.
    k_max : int
        Largest cluster count, >= 1.

    Returns
    -------
    ndarray of shape (k_max,), float64
        Entry k - 1 is the MSE over the finite values with k clusters; non-increasing in k,
        0.0 from the number of distinct values on (and everywhere if none is finite).

    Raises
    ------
    ClusteringError
        As `cluster` does, for a bad `k_max` or values.
    """
    _check_integer("k_max", k_max, 1)
    _, flat = _float_values(values)
    from ._curve import sse_curve  # numba and the kernels load here, not at import

    sse, total = sse_curve(flat, int(k_max))
    return sse / total if total > 0 else sse


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
    from ._codebook import substitute as apply  # numba loads here, not at import

    return apply(values, labels, codebook)


def _float_values(values: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(the array, its flat native-byte-order view or copy); float16/32/64 only."""
    array = np.asarray(values)
    if array.dtype.type not in _FLOAT_KINDS:
        raise ClusteringError(f"values must be float16, float32 or float64, got {array.dtype}")
    flat = array.reshape(-1)
    if not flat.dtype.isnative:
        flat = flat.astype(flat.dtype.newbyteorder("="))
    return array, flat


@contextmanager
def kernels_preferred() -> Iterator[None]:
    """Within this context, in this thread, arrays of any size run on the numba kernels.

    Arrays of up to 32,768 values otherwise take exact NumPy twins of the kernels, so that a
    small model's first run need not compile them. For many small arrays in a row (one
    codebook per group of channels of a large tensor) the kernels are about twice as fast
    and their one-time load is repaid. Results are bit for bit the same either way.
    """
    from . import _twins

    with _twins.kernels_preferred():
        yield
