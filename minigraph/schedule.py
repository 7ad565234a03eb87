"""Running the clustering of selected Consts: per tensor (several at once where memory allows)
or with one global codebook, and each tensor's k under a bit budget."""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import numpy as np

from . import budget, codec, curves, dtypes, groups, packing, palette_nodes
from .codebook import fit_labels, round_codebook
from .engine import cluster, substitute
from .errors import ClusteringError, DecodeError
from .graph import ConstRef
from .options import Options
from .report import TensorReport

__all__ = ["Job", "decode", "run_local", "run_global", "choose_ks"]


@dataclass
class Job:
    """One selected Const on its way through clustering."""

    ref: ConstRef
    info: codec.TensorInfo
    row: TensorReport
    content: memoryview | None = None  # tensor_content kept outside the message (lifted)
    new: np.ndarray | packing.Coded | None = None  # the new values, once clustered
    unit: budget.Unit | None = None  # error curve and mean square, with a per-tensor k
    k: int | None = None  # this tensor's k, with a per-tensor k
    group_size: int | None = None  # ... and its channels per codebook, if chosen per group


def decode(job: Job) -> np.ndarray:
    """The tensor's values, flat (a read-only view of tensor_content where possible)."""
    try:
        return codec.to_array(job.ref.tensor, job.content).reshape(-1)
    except DecodeError as exc:
        raise job.ref.locate(exc) from None


def _finish(job: Job, values: np.ndarray, labels: np.ndarray, book: np.ndarray, *,
            coded: bool = False) -> None:
    """Compute one tensor's new values (kept on the job, not yet written) and its report row:
    each finite value becomes the nearest codebook entry its dtype holds, NaN and ±Inf stay.

    With ``coded`` (the palette form) and every value finite, the job keeps them as their
    palette and labels (``packing.Coded``): a quarter of the bytes for float32, and the palette
    builder does not search the values for them again.
    """
    fitted = fit_labels(labels.reshape(-1), book, job.info.dtype)
    if fitted is None:
        job.row.skipped = f"no entry of the global codebook fits {job.info.dtype_name}"
        return
    new, errors = substitute(values, fitted, book)
    row = job.row
    row.mse, row.max_abs_error, row.sqnr_db = errors.mse, errors.max_abs_error, errors.sqnr_db
    row.distinct_after = errors.distinct
    job.new = new
    if coded and packing.palette_supported(job.info.dtype) and np.isfinite(values).all():
        job.new = packing.coded_from_clusters(fitted, book.astype(new.dtype), job.info.dtype,
                                              errors.distinct)


def _refusal(exc: ClusteringError) -> str:
    # Options are validated up front: the engine refuses the values (magnitudes whose sums of
    # squares could overflow). The tensor stays as stored; the rest of the graph is compressed.
    return f"not clusterable: {exc}"


def _cluster_one(job: Job, values: np.ndarray, options: Options):
    """Cluster one tensor and compute its new values (runs on a worker thread); None when the
    engine refuses its values (the reason is on the job's row). Below an SQNR floor (the curve
    is close, not exact) k is raised one at a time up to the cap."""
    k = job.k or options.n_clusters
    group_size = job.group_size if job.k is not None else options.group_size
    try:
        if groups.group_count(job.info.shape, group_size):  # one codebook per group
            return _cluster_grouped(job, values, options, k, int(group_size or 0))
        while True:
            result = cluster(values, k, method=options.method, init=options.init,
                             seed=options.seed)
            # At a per-tensor k the palette form needs even unchanged tensors, to hold their width.
            if result.method != "exact" or (job.k is not None and options.palettize):
                _finish(job, values, result.labels,
                        round_codebook(result.centroids, [job.info.dtype]),
                        coded=options.palettize)
            if not budget.short_of(job.row.sqnr_db, options.min_sqnr) or \
                    result.method == "exact" or k >= options.n_clusters:
                break
            k += 1
    except ClusteringError as exc:
        job.row.skipped = _refusal(exc)
        return None
    if job.k is not None:
        job.k = job.row.k = max(1, result.centroids.size)
        job.row.bits = budget.bits_per_index(job.k, options.palettize)
    return result


def _cluster_grouped(job: Job, values: np.ndarray, options: Options, k: int,
                     group_size: int) -> groups.GroupedClustering:
    """One codebook per group of channels; below an SQNR floor k is raised as for a tensor."""
    while True:
        grouped = groups.cluster_groups(
            values, job.info.shape, k, group_size,
            rounding=lambda book: round_codebook(book, [job.info.dtype]),
            method=options.method, init=options.init, seed=options.seed)
        job.new = grouped.fill(job.row)
        if not budget.short_of(job.row.sqnr_db, options.min_sqnr) or \
                grouped.method == "exact" or k >= options.n_clusters:
            break
        k += 1
    if job.k is not None:
        job.k = job.row.k = k
        job.row.bits = budget.bits_per_index(k, options.palettize)
    return grouped


_BINNING_BYTES = 64 << 20  # the float32 path's fixed working set: 2**20 bins, bitmaps, tables


def _working_bytes(job: Job) -> int:
    """Rough peak memory of clustering one tensor: its decoded copy, new values and labels,
    plus the engine's sorted copy (or, for large float32 tensors, its fixed-size bins)."""
    n, size = job.info.n_elements, dtypes.lookup(job.info.dtype).array.itemsize
    engine = _BINNING_BYTES if size == 4 and n >= (1 << 18) else n * size
    return n * (2 * size + 1) + engine


def run_local(jobs: list[Job], options: Options, progress: Callable[[TensorReport], None]) -> None:
    """Cluster tensors largest first, several at once only where memory allows.

    Clustered tensors keep their new values until the file is written, so memory peaks at the
    largest value over time of (new values kept so far + working sets in flight). A tensor
    starts beside others only if that sum stays within the peak of running them one by one:
    a second core is used without raising the peak memory.
    """
    workers = options.workers or min(2, os.cpu_count() or 1)
    pending = sorted(jobs, key=lambda job: -job.info.n_elements)
    kept, serial_peak = 0, 0
    for job in pending:
        serial_peak = max(serial_peak, kept + _working_bytes(job))
        kept += job.info.n_elements * dtypes.lookup(job.info.dtype).array.itemsize
    kept = 0
    running: dict[Future, Job] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            in_flight = sum(_working_bytes(job) for job in running.values())
            while pending and len(running) < workers and (
                    not running or kept + in_flight + _working_bytes(pending[0]) <= serial_peak):
                job = pending.pop(0)
                values = decode(job)
                running[pool.submit(_cluster_one, job, values, options)] = job
                in_flight += _working_bytes(job)
                del values
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                result = future.result()
                if result is None:
                    progress(job.row)
                    continue
                job.row.distinct_before = result.n_distinct
                job.row.method, job.row.iterations = result.method, result.iterations
                if job.new is None:
                    job.row.skipped = job.row.skipped or (
                        f"≤ {job.k or options.n_clusters} distinct values"
                        f"{' per group' if job.row.groups else ''}")
                else:
                    kept += job.new.nbytes
                progress(job.row)


def _extremes_refused(values: np.ndarray) -> str | None:
    """Why the engine would refuse a tensor's values, found by offering it just their extremes."""
    finite = values[np.isfinite(values)]
    try:
        if finite.size:
            cluster(np.array([finite.min(), finite.max()], dtype=np.float64), 1)
    except ClusteringError as exc:
        return _refusal(exc)
    return None


def run_global(jobs: list[Job], options: Options, progress: Callable[[TensorReport], None]) -> None:
    """One codebook over all selected tensors, each tensor rounded back to its own dtype."""
    decoded, kept = [], []
    for job in jobs:
        values = decode(job)
        job.row.skipped = _extremes_refused(values)
        if job.row.skipped is None:
            decoded.append(values)
            kept.append(job)
        else:
            progress(job.row)
    jobs = kept
    if not jobs:
        return
    # float16/bfloat16/float32 values are all exact in float32; float64 needs float64.
    wide = any(values.dtype == np.float64 for values in decoded)
    with np.errstate(invalid="ignore"):  # widening a signalling NaN raises the flag
        pooled = np.concatenate([v.astype(np.float64 if wide else np.float32, copy=False)
                                 for v in decoded])
    result = cluster(pooled, options.n_clusters, method=options.method, init=options.init,
                     seed=options.seed)
    del pooled
    book = None
    if result.method != "exact":
        book = round_codebook(result.centroids, [job.info.dtype for job in jobs])
    start = 0
    for job, values in zip(jobs, decoded, strict=True):
        labels = result.labels[start:start + values.size]
        start += values.size
        job.row.method, job.row.iterations = result.method, result.iterations
        job.row.distinct_before = int(np.unique(values[np.isfinite(values)]).size)
        if book is None:
            job.row.skipped = f"≤ {options.n_clusters} distinct values (globally)"
        else:
            _finish(job, values, labels, book)
        progress(job.row)


# Group sizes a budget in the palette form weighs against one palette per tensor when no
# group size is given, at k up to AUTO_GROUP_K_MAX: Core ML's per-grouped-channel palettes use
# groups of 8 and more channels at 2 to 4 bits, where one palette per tensor loses most. A
# per-group curve to k = 256 would cost as much as clustering the tensor once per group size
# (ten times a plain run on the 25M-weight benchmark graph); to k = 16, a fraction of that.
AUTO_GROUP_SIZES = (8, 32)
AUTO_GROUP_K_MAX = 16


def _ways(job: Job, options: Options) -> list[int | None]:
    """How a tensor may be clustered under a per-tensor k: one codebook (None) or one per
    group of G channels; the given group size, else (palette form) each automatic size that
    splits a kernel (rank 2 or more: its last axis holds the output channels) into two
    groups or more."""
    shape = job.info.shape
    if options.group_size is not None:
        return [options.group_size] if groups.group_count(shape, options.group_size) else [None]
    if not options.palettize or len(shape) < 2:
        return [None]
    return [None] + [size for size in AUTO_GROUP_SIZES if groups.group_count(shape, size) > 1]


def _with_grouping_nodes(job: Job, unit: budget.Unit, k_max: int) -> budget.Unit:
    """A grouped unit charged with the bytes of the decode nodes only grouping adds (about
    0.75 KB a tensor): on small tensors they outweigh what the groups save."""
    group = palette_nodes.group_of(job.info.shape, unit.group_size)
    if not group:
        return unit
    extra = palette_nodes.grouping_bytes(job.info.shape, group, k_max, job.info.dtype)
    return replace(unit, extra_bits=8 * extra)


def _shaped(job: Job, grouped: bool) -> np.ndarray:
    values = decode(job)
    return values.reshape(-1, job.info.shape[-1]) if grouped else values


def choose_ks(jobs: list[Job], options: Options) -> dict:
    """Give each job its k, and how it is grouped, from its all-k error curves
    (minigraph.curves, minigraph.budget)."""
    ways = [_ways(job, options) for job in jobs]
    units = curves.measure_all(
        [partial(_shaped, job, any(way is not None for way in sizes))
         for job, sizes in zip(jobs, ways, strict=True)],
        [dtypes.lookup(job.info.dtype).itemsize for job in jobs],
        options.n_clusters, options.workers or min(2, os.cpu_count() or 1), ways,
        AUTO_GROUP_K_MAX if options.group_size is None else None)
    if options.palettize:  # a grouped palette's own decode nodes count against the budget
        units = [[_with_grouping_nodes(job, unit, options.n_clusters) for unit in alternatives]
                 for job, alternatives in zip(jobs, units, strict=True)]
    ks, variants, chosen = budget.choose(units, bits_per_weight=options.bits_per_weight,
                                         min_sqnr=options.min_sqnr, palette=options.palettize)
    for job, alternatives, k, variant in zip(jobs, units, ks, variants, strict=True):
        job.unit, job.k = alternatives[variant], k
        job.group_size = job.unit.group_size
    if options.group_size is None and any(len(sizes) > 1 for sizes in ways):
        chosen["group_sizes_tried"] = list(AUTO_GROUP_SIZES)
        chosen["group_k_max"] = min(options.n_clusters, AUTO_GROUP_K_MAX)
    return chosen
