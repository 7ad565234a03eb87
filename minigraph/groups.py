"""Per-channel-group codebooks: one k-means codebook per group of G consecutive output channels.

TensorFlow keeps output channels on the last axis (HWIO convolution kernels, [in, out] matmul
kernels), so a group is a slice of the last axis. Channels differ in scale, and one codebook
per few channels spends the k values where each channel's weights are. Apple's coremltools
palettization documentation reports data-free 4-bit palettes costing ResNet-50 about 9 points
of top-1 accuracy with one palette per tensor and about 4 with one per group of 8 channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from contextlib import nullcontext
from typing import Callable, ContextManager, Sequence

import numpy as np

from .engine import cluster, kernels_preferred, substitute
from .errors import ClusteringError
from .report import TensorReport

__all__ = ["GroupedClustering", "check_group_size", "group_count", "cluster_groups", "LARGE"]

LARGE = 1 << 15  # values beyond which the engine runs its numba kernels, not their twins


@dataclass
class GroupedClustering:
    """What clustering a tensor group by group did, in the shape ``compress`` reads results.

    ``method`` is "exact" when no group had more than k distinct values (nothing changed);
    ``new`` is None then. Errors are over the whole tensor's finite values.
    """

    method: str
    iterations: int
    n_distinct: int
    groups: int
    new: np.ndarray | None = None
    mse: float = 0.0
    max_abs_error: float = 0.0
    sqnr_db: float | None = None
    distinct_after: int = 0
    group_size: int = 0

    def fill(self, row: TensorReport) -> np.ndarray | None:
        """Put the groups and errors into a report row; returns the new values (or None)."""
        row.group_size, row.groups = self.group_size, self.groups
        if self.new is not None:
            row.mse, row.max_abs_error, row.sqnr_db = self.mse, self.max_abs_error, self.sqnr_db
            row.distinct_after = self.distinct_after
        return self.new


def check_group_size(group_size: object, global_clusters: bool) -> None:
    """Refuse a group size that is not an integer >= 1, or any with a global codebook.

    Raises
    ------
    ClusteringError
        Naming the value, or the conflict.
    """
    if group_size is None:
        return
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) \
            or group_size < 1:
        raise ClusteringError(f"group_size must be an integer >= 1, got {group_size!r}")
    if global_clusters:
        # One codebook for the whole graph and one per group of channels contradict each other.
        raise ClusteringError("group_size cannot be combined with global_clusters (one codebook "
                              "per group of channels versus one for the whole graph)")


def group_count(shape: Sequence[int], group_size: int | None) -> int:
    """How many groups a tensor of this shape is split into (0: clustered as one tensor).

    A tensor is grouped when it has a last axis of at least 2 channels; ``group_size`` at or
    above the channel count gives one group.
    """
    if not group_size or not shape or shape[-1] < 2:
        return 0
    return -(-int(shape[-1]) // int(group_size))


def cluster_groups(values: np.ndarray, shape: Sequence[int], k: int, group_size: int, *,
                   rounding: Callable[[np.ndarray], np.ndarray], method: str = "auto",
                   init: str = "auto", seed: int = 0) -> GroupedClustering:
    """Cluster each group of ``group_size`` channels of the last axis into at most ``k`` values.

    Parameters
    ----------
    values : ndarray of shape (n,), float16 / float32 / float64
        The tensor's values, flat in C order (n is a multiple of ``shape[-1]``).
    shape : sequence of int
        The tensor's shape; its last axis holds the channels.
    k, group_size : int
        Values per group's codebook, channels per group (the last group may have fewer).
    rounding : callable
        Maps a float64 codebook to the values the tensor's dtype holds.
    method, init, seed
        Passed to :func:`minigraph.cluster` for each group.

    Returns
    -------
    GroupedClustering
        New values (NaN and ±Inf in place), errors over the tensor, distinct counts, and the
        method that ran ("exact" only if every group already had at most k values).
    """
    channels = int(shape[-1])
    grid = values.reshape(-1, channels)
    new = np.array(grid)  # a writable copy in the tensor's dtype
    tally = _Tally()
    with _fast_for_many(values.size):
        for start in range(0, channels, group_size):
            _cluster_group(grid, new, tally, start, group_size, k, rounding, method, init, seed)
    ran = sorted(tally.methods - {"exact"})  # sorted: the report is the same on every run
    # Distinct values of the whole tensor: one sort, not one per group and one of their union.
    out = GroupedClustering(ran[0] if ran else "exact", tally.iterations,
                            int(np.unique(values[np.isfinite(values)]).size),
                            group_count(shape, group_size), group_size=group_size)
    if ran:
        out.new = new.reshape(-1)
        tally.finish(out)
    return out


def _fast_for_many(n: int) -> ContextManager[None]:
    """The numba kernels for a large tensor's many small groups (they beat their NumPy twins,
    and one piece of that size would load them anyway); a small tensor keeps the twins, so
    that it needs no kernel compiled."""
    return kernels_preferred() if n > LARGE else nullcontext()


def _cluster_group(grid: np.ndarray, new: np.ndarray, tally: "_Tally", start: int,
                   group_size: int, k: int, rounding: Callable[[np.ndarray], np.ndarray],
                   method: str, init: str, seed: int) -> None:
    """Cluster one group of channels, writing its new values into ``new``."""
    part = np.ascontiguousarray(grid[:, start:start + group_size]).reshape(-1)
    result = cluster(part, k, method=method, init=init, seed=seed)
    done = part
    if result.method != "exact":
        done, _ = substitute(part, result.labels.reshape(-1), rounding(result.centroids))
        new[:, start:start + group_size] = done.reshape(grid.shape[0], -1)
    tally.add(part, done, result.method, result.iterations)


class _Tally:
    """Errors and distinct values summed group by group, so no tensor-sized float64 copy."""

    def __init__(self) -> None:
        self.methods: set[str] = set()
        self.iterations = self.count = 0
        self.sse = self.signal = self.worst = 0.0
        self.distinct_after: list[np.ndarray] = []

    def add(self, part: np.ndarray, done: np.ndarray, method: str, iterations: int) -> None:
        self.methods.add(method)
        self.iterations = max(self.iterations, iterations)
        finite = np.isfinite(part)
        before, after = part[finite].astype(np.float64), done[finite].astype(np.float64)
        error = np.abs(after - before)
        self.sse += float(np.dot(error, error))
        self.signal += float(np.dot(before, before))
        self.worst = max(self.worst, float(error.max(initial=0.0)))
        self.count += before.size
        self.distinct_after.append(np.unique(done[finite]))

    def finish(self, out: GroupedClustering) -> None:
        """MSE, largest error, SQNR (10 log10 of mean square over MSE), distinct values left."""
        out.mse = self.sse / self.count if self.count else 0.0
        out.max_abs_error = self.worst
        out.sqnr_db = (10 * float(np.log10(self.signal / self.sse))
                       if self.sse > 0 and self.signal > 0 else None)
        out.distinct_after = int(np.unique(np.concatenate(self.distinct_after)).size)
