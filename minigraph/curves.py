"""Tensors measured for the bit budget: all-k error curves, per tensor or per channel group."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Callable, Sequence

import numpy as np

from .budget import Unit
from .engine import kernels_preferred
from .groups import LARGE

__all__ = ["measure", "measure_groups", "measure_all", "SAMPLED_GROUPS", "SAMPLED_VALUES"]

# Groups measured per tensor when the group size is only being weighed (curves.measure_all's
# group_k_max): spread over the channels, they stand for all. One curve costs about as much
# as clustering the group once, so at most 64 groups and about 2^20 values, at least 8.
SAMPLED_GROUPS = 64
SAMPLED_VALUES = 1 << 20


def measure(values: np.ndarray, k_max: int, itemsize: int | None = None) -> Unit:
    """Measure one tensor for the allocation.

    Parameters
    ----------
    values : ndarray, float16 / float32 / float64
        The tensor's values; NaN and +-inf are left out of the curve and mean square.
    k_max : int
        Largest k.
    itemsize : int, optional
        Bytes of one palette entry, if not the values' own (bfloat16 decodes as float32).

    Returns
    -------
    Unit
        Its weights, entry size, optimal MSE for k = 1..k_max (`engine.error_curve`) and
        mean square.
    """
    from .engine import error_curve  # numba loads with the engine, not at import

    flat = values.reshape(-1)
    return Unit(int(flat.size), int(itemsize or flat.dtype.itemsize), error_curve(flat, k_max),
                _mean_square(flat))


def _mean_square(flat: np.ndarray) -> float:
    """Mean square of the finite values (0.0 without any)."""
    total, count = 0.0, 0
    for start in range(0, flat.size, 1 << 20):  # float64 sums, a bounded slice at a time
        part = flat[start:start + (1 << 20)].astype(np.float64)
        part = part[np.isfinite(part)]
        total += float(np.dot(part, part))
        count += part.size
    return total / count if count else 0.0


def measure_groups(values: np.ndarray, group_size: int, k_max: int,
                   itemsize: int | None = None, max_groups: int | None = None) -> Unit:
    """Measure one tensor clustered per group of output channels, one palette per group.

    Parameters
    ----------
    values : ndarray of rank >= 1, float16 / float32 / float64
        The tensor; its last axis holds the output channels (TF's HWIO and [in, out]).
    group_size : int
        Consecutive channels per group (>= 1); the last group may be smaller.
    k_max : int
        Largest k.
    itemsize : int, optional
        As for `measure`.
    max_groups : int, optional
        Measure at most this many groups, evenly spaced over the channels, and take their
        curve for all (an estimate; the mean square is still the whole tensor's).

    Returns
    -------
    Unit
        One palette per group; the curve is the groups' optimal MSEs averaged by their
        finite values (each group clustered on its own at the same k).
    """
    channels = values.shape[-1]
    sse = np.zeros(k_max)
    total = finite = 0.0
    starts = list(range(0, channels, group_size))
    picked = starts
    if max_groups is not None and len(starts) > max_groups:
        picked = [starts[i] for i in np.linspace(0, len(starts) - 1, max_groups).round()
                  .astype(int)]
    with kernels_preferred() if values.size > LARGE else nullcontext():
        parts = [measure(np.ascontiguousarray(values[..., start:start + group_size]), k_max)
                 for start in picked]
    for start, part in zip(picked, parts, strict=True):
        count = float(np.isfinite(values[..., start:start + group_size]).sum())
        sse += part.curve * count
        total += part.mean_square * count
        finite += count
    mean_square = total / finite if finite else 0.0
    if picked is not starts:  # the mean square over every group, not the sample's
        mean_square = _mean_square(values.reshape(-1))
    return Unit(int(values.size), int(itemsize or values.dtype.itemsize),
                sse / finite if finite else sse, mean_square, len(starts), group_size)


def measure_all(loaders: Sequence[Callable[[], np.ndarray]], itemsizes: Sequence[int],
                k_max: int, workers: int,
                group_sizes: Sequence[Sequence[int | None]] | None = None,
                group_k_max: int | None = None) -> list[list[Unit]]:
    """Measure every tensor, several at once, each in one or more ways.

    Parameters
    ----------
    loaders : sequence of callables
        Each returns one tensor's values (called on a worker thread), shaped with the
        channels on the last axis where they are measured per group.
    itemsizes : sequence of int
        Bytes of one palette entry of each tensor.
    k_max : int
        Largest k.
    workers : int
        Curves computed at once (the kernels release the GIL).
    group_sizes : sequence of sequences of (int or None), optional
        Per tensor, the ways to measure it: None for one palette (`measure`), G for one per
        group of G channels (`measure_groups`). Default: one palette each.
    group_k_max : int, optional
        Largest k of the per-group curves, if less than ``k_max`` (a curve's cost grows
        with its largest k, and a tensor has many groups); when given, at most
        ``SAMPLED_GROUPS`` groups of a tensor and about ``SAMPLED_VALUES`` values (but at
        least 8 groups) are measured (`measure_groups`' max_groups).

    Returns
    -------
    list of lists of Unit
        Per loader, in order, one Unit per way asked.
    """
    ways = group_sizes or [[None]] * len(loaders)
    tasks = [(number, size) for number, sizes in enumerate(ways) for size in sizes]

    def run(task: tuple[int, int | None]) -> Unit:
        number, size = task
        values = loaders[number]()
        if size is None:
            return measure(values, k_max, itemsizes[number])
        if group_k_max is None:
            return measure_groups(values, size, k_max, itemsizes[number])
        per_group = values.size // max(values.shape[-1], 1) * size
        most = min(SAMPLED_GROUPS, max(8, SAMPLED_VALUES // max(per_group, 1)))
        return measure_groups(values, size, min(k_max, group_k_max), itemsizes[number], most)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        units = list(pool.map(run, tasks))
    out: list[list[Unit]] = [[] for _ in loaders]
    for (number, _), unit in zip(tasks, units, strict=True):
        out[number].append(unit)
    return out
