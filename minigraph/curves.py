"""Tensors measured for the bit budget: all-k error curves, per tensor or per channel group."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np

from .budget import Unit

__all__ = ["measure", "measure_groups", "measure_all"]


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
    total, count = 0.0, 0
    for start in range(0, flat.size, 1 << 20):  # float64 sums, a bounded slice at a time
        part = flat[start:start + (1 << 20)].astype(np.float64)
        part = part[np.isfinite(part)]
        total += float(np.dot(part, part))
        count += part.size
    return Unit(int(flat.size), int(itemsize or flat.dtype.itemsize), error_curve(flat, k_max),
                total / count if count else 0.0)


def measure_groups(values: np.ndarray, group_size: int, k_max: int,
                   itemsize: int | None = None) -> Unit:
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

    Returns
    -------
    Unit
        One palette per group; the curve is the groups' optimal MSEs averaged by their
        finite values (each group clustered on its own at the same k).
    """
    channels = values.shape[-1]
    sse = np.zeros(k_max)
    total = finite = 0.0
    starts = range(0, channels, group_size)
    for start in starts:
        part = measure(np.ascontiguousarray(values[..., start:start + group_size]), k_max)
        count = float(np.isfinite(values[..., start:start + group_size]).sum())
        sse += part.curve * count
        total += part.mean_square * count
        finite += count
    return Unit(int(values.size), int(itemsize or values.dtype.itemsize),
                sse / finite if finite else sse, total / finite if finite else 0.0, len(starts))


def measure_all(loaders: Sequence[Callable[[], np.ndarray]], itemsizes: Sequence[int],
                k_max: int, workers: int) -> list[Unit]:
    """Measure every tensor, several at once.

    Parameters
    ----------
    loaders : sequence of callables
        Each returns one tensor's values (called on a worker thread).
    itemsizes : sequence of int
        Bytes of one palette entry of each tensor.
    k_max : int
        Largest k.
    workers : int
        Curves computed at once (the kernels release the GIL).

    Returns
    -------
    list of Unit
        One per loader, in order (see `measure`).
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        units = list(pool.map(lambda load, size: measure(load(), k_max, size), loaders,
                              itemsizes))
    return units
