"""Orchestration: choose the Consts to cluster, cluster them, write centroids back, report."""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import budget, codec, curves, dtypes, groups, palette
from .codebook import fit_labels, round_codebook
from .engine import check_options, cluster, substitute
from .errors import ClusteringError, DecodeError
from .graph import ConstRef, iter_consts
from .plotdata import add_figure_data
from .report import Report, TensorReport
from .schema import GraphDef

__all__ = ["Options", "compress", "compress_in_place", "plan_compression", "palettize_changes",
           "converge_weights"]

_log = logging.getLogger("minigraph")
# The memory rule: a tensor is expanded only if it decodes to at most 16 MiB or 16 times the
# bytes it stores; beyond, it stays as stored. A short typed list is padded with its last value
# (MakeNdarray, tensorflow/python/framework/tensor_util.py): a few bytes can declare gigabytes,
# and a clustered tensor is written back whole. Other encodings decode to at most 4x their size.
EXPAND_FLOOR_BYTES = 16 << 20
EXPAND_RATIO = 16


@dataclass(frozen=True)
class Options:
    """What to cluster and how; the defaults are the 2016 tool's (k = 256, 256 weights minimum)."""

    n_clusters: int = 256
    global_clusters: bool = False
    whitelisted: tuple[str, ...] = ()
    min_n_weights: int = 256
    method: str = "auto"
    init: str = "auto"
    seed: int = 0
    workers: int | None = None
    palettize: bool = False  # the palette form (indices + codebook in the graph)
    group_size: int | None = None  # one codebook per group of this many output channels
    figure_data: bool = False  # fill TensorReport.figure for the tensors a plot shows
    figure_tensors: tuple[str, ...] = ()  # those matching these patterns; else the largest 6
    bits_per_weight: float | None = None  # k per tensor within this average budget
    min_sqnr: float | None = None  # k per tensor: the smallest reaching this SQNR (dB)

    @property
    def per_tensor_k(self) -> bool:
        """True when each tensor gets its own k (a budget or an SQNR floor; k is then a cap)."""
        return self.bits_per_weight is not None or self.min_sqnr is not None

    def validate(self) -> Options:
        """Check every option up front, so a bad one fails before any work is done."""
        check_options(n_clusters=self.n_clusters, method=self.method, init=self.init,
                      seed=self.seed, workers=self.workers, min_n_weights=self.min_n_weights)
        groups.check_group_size(self.group_size, self.global_clusters)
        budget.check_options(self.bits_per_weight, self.min_sqnr, self.global_clusters)
        if self.group_size is not None and self.per_tensor_k:
            raise ClusteringError("group_size cannot be combined with bits_per_weight or "
                                  "min_sqnr: budgets are chosen per tensor, not per group")
        patterns = tuple(p.strip() for p in self.whitelisted if p and p.strip())
        shown = tuple(p.strip() for p in self.figure_tensors if p and p.strip())
        return replace(self, whitelisted=patterns, figure_tensors=shown)


@dataclass
class _Job:
    ref: ConstRef
    info: codec.TensorInfo
    row: TensorReport
    content: memoryview | None = None  # tensor_content kept outside the message (lifted)
    new: np.ndarray | None = None  # the new values, once clustered
    unit: budget.Unit | None = None  # error curve and mean square, with a per-tensor k
    k: int | None = None  # this tensor's k, with a per-tensor k


Change = Tuple[ConstRef, np.ndarray]


def _is_whitelisted(ref: ConstRef, patterns: Sequence[str]) -> bool:
    names = [ref.name] if ref.function is None else [ref.name, ref.node.name]
    return any(fnmatch.fnmatchcase(name, p) for name in names for p in patterns)


def _skip_reason(ref: ConstRef, info: codec.TensorInfo, options: Options) -> str | None:
    """Why a Const is not clustered, or None when it is a candidate."""
    if info.dtype not in dtypes.FLOAT_TYPES:
        return f"not float ({info.dtype_name})"
    if _is_whitelisted(ref, options.whitelisted):
        return "whitelisted"
    if info.n_elements < options.min_n_weights:
        return f"too small ({info.n_elements} < {options.min_n_weights} weights)"
    if info.encoding in ("splat", "zeros", "empty"):
        return f"stored as one value ({info.encoding})"
    if info.max_distinct <= options.n_clusters and not (options.global_clusters
                                                         or options.per_tensor_k):
        # (A global codebook takes these too: the whole graph must end with at most k values.)
        return f"≤ {options.n_clusters} distinct values"
    decoded = info.n_elements * dtypes.lookup(info.dtype).array.itemsize
    if decoded > max(EXPAND_FLOOR_BYTES, EXPAND_RATIO * info.nbytes):
        return (f"{info.encoding} list of {info.n_stored} values stored in {info.nbytes} bytes "
                f"would expand to {decoded} bytes (over 16 MiB and {EXPAND_RATIO}x)")
    return None



def _select(graph_def: GraphDef, options: Options,
            lifted: Mapping[bytes, memoryview]) -> tuple[list[_Job], list[TensorReport]]:
    jobs, rows = [], []
    parts = palette.palette_parts(graph_def)
    for ref in iter_consts(graph_def):
        content = lifted.get(ref.tensor.tensor_content) if lifted else None
        try:
            info = codec.describe(ref.tensor, content)
        except DecodeError as exc:
            raise ref.locate(exc) from None
        row = TensorReport(name=ref.name, function=ref.function, dtype=info.dtype_name,
                           shape=info.shape, elements=info.n_elements,
                           bytes_before=info.nbytes, bytes_after=info.nbytes)
        rows.append(row)
        reason = "part of a palette (already palettized)" if ref.name in parts else \
            _skip_reason(ref, info, options)
        if reason is None:
            jobs.append(_Job(ref, info, row, content))
        else:
            row.skipped = reason
    return jobs, rows


def _decode(job: _Job) -> np.ndarray:
    """The tensor's values, flat (a read-only view of tensor_content where possible)."""
    try:
        return codec.to_array(job.ref.tensor, job.content).reshape(-1)
    except DecodeError as exc:
        raise job.ref.locate(exc) from None


def _finish(job: _Job, values: np.ndarray, labels: np.ndarray, book: np.ndarray) -> None:
    """Compute one tensor's new values (kept on the job, not yet written) and its report row:
    each finite value becomes the nearest codebook entry its dtype holds, NaN and ±Inf stay."""
    fitted = fit_labels(labels.reshape(-1), book, job.info.dtype)
    if fitted is None:
        job.row.skipped = f"no entry of the global codebook fits {job.info.dtype_name}"
        return
    new, errors = substitute(values, fitted, book)
    row = job.row
    row.mse, row.max_abs_error, row.sqnr_db = errors.mse, errors.max_abs_error, errors.sqnr_db
    row.distinct_after = errors.distinct
    job.new = new


def _refusal(exc: ClusteringError) -> str:
    # Options are validated up front: the engine refuses the values (magnitudes whose sums of
    # squares could overflow). The tensor stays as stored; the rest of the graph is compressed.
    return f"not clusterable: {exc}"


def _cluster_one(job: _Job, values: np.ndarray, options: Options):
    """Cluster one tensor and compute its new values (runs on a worker thread); None when the
    engine refuses its values (the reason is on the job's row). Below an SQNR floor (the curve
    is close, not exact) k is raised one at a time up to the cap."""
    k = job.k or options.n_clusters
    try:
        if groups.group_count(job.info.shape, options.group_size):  # one codebook per group
            grouped = groups.cluster_groups(
                values, job.info.shape, k, int(options.group_size or 0),
                rounding=lambda book: round_codebook(book, [job.info.dtype]),
                method=options.method, init=options.init, seed=options.seed)
            job.new = grouped.fill(job.row)
            return grouped
        while True:
            result = cluster(values, k, method=options.method, init=options.init,
                             seed=options.seed)
            # At a per-tensor k the palette form needs even unchanged tensors, to hold their width.
            if result.method != "exact" or (job.k is not None and options.palettize):
                _finish(job, values, result.labels,
                        round_codebook(result.centroids, [job.info.dtype]))
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


_BINNING_BYTES = 64 << 20  # the float32 path's fixed working set: 2**20 bins, bitmaps, tables


def _working_bytes(job: _Job) -> int:
    """Rough peak memory of clustering one tensor: its decoded copy, new values and labels,
    plus the engine's sorted copy (or, for large float32 tensors, its fixed-size bins)."""
    n, size = job.info.n_elements, dtypes.lookup(job.info.dtype).array.itemsize
    engine = _BINNING_BYTES if size == 4 and n >= (1 << 18) else n * size
    return n * (2 * size + 1) + engine


def _run_local(jobs: list[_Job], options: Options, progress: Callable[[TensorReport], None]) -> None:
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
    running: dict[Future, _Job] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            in_flight = sum(_working_bytes(job) for job in running.values())
            while pending and len(running) < workers and (
                    not running or kept + in_flight + _working_bytes(pending[0]) <= serial_peak):
                job = pending.pop(0)
                values = _decode(job)
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


def _run_global(jobs: list[_Job], options: Options, progress: Callable[[TensorReport], None]) -> None:
    """One codebook over all selected tensors, each tensor rounded back to its own dtype."""
    decoded, kept = [], []
    for job in jobs:
        values = _decode(job)
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


Progress = Callable[[Optional[TensorReport], int, int], None]


def _choose_ks(jobs: list[_Job], options: Options) -> dict:
    """Give each job its k from its all-k error curve (minigraph.curves, minigraph.budget)."""
    units = curves.measure_all([partial(_decode, job) for job in jobs],
                               [dtypes.lookup(job.info.dtype).itemsize for job in jobs],
                               options.n_clusters, options.workers or min(2, os.cpu_count() or 1))
    ks, chosen = budget.choose(units, bits_per_weight=options.bits_per_weight,
                               min_sqnr=options.min_sqnr, palette=options.palettize)
    for job, unit, k in zip(jobs, units, ks, strict=True):
        job.unit, job.k = unit, k
    return chosen


def plan_compression(graph_def: GraphDef, options: Options | None = None, *,
                     progress: Progress | None = None,
                     lifted: Mapping[bytes, memoryview] | None = None
                     ) -> tuple[Report, list[Change]]:
    """Cluster the eligible Consts without writing anything back.

    Returns the report and, per clustered tensor, its Const and new values (flat, in the
    tensor's array dtype). ``progress``, if given, is called as
    ``progress(row, weights_done, weights_total)`` once with ``row=None`` before any work, then
    each time a selected tensor completes. ``lifted`` maps the markers of a graph read with
    ``pbfile.parse_graph_lifted`` to its tensors' contents.
    """
    options = (options or Options()).validate()
    started = time.perf_counter()
    jobs, rows = _select(graph_def, options, lifted or {})
    total = sum(job.info.n_elements for job in jobs)
    done = 0
    if progress is not None:
        progress(None, 0, total)

    def tick(row: TensorReport) -> None:
        nonlocal done
        done += row.elements
        if progress is not None:
            progress(row, done, total)

    chosen = _choose_ks(jobs, options) if options.per_tensor_k else None
    run = _run_global if options.global_clusters else _run_local
    run(jobs, options, tick)
    for job in jobs:
        if job.new is not None:  # written back as tensor_content
            job.row.bytes_after = job.info.n_elements * dtypes.lookup(job.info.dtype).itemsize
    if options.figure_data:
        add_figure_data(graph_def, rows, {job.ref.name: job.new for job in jobs
                                          if job.new is not None}, options, lifted)
    rows.sort(key=lambda row: row.name)
    report = Report(tensors=rows, n_clusters=options.n_clusters,
                    global_clusters=options.global_clusters, method=options.method,
                    init=options.init, seed=options.seed, min_n_weights=options.min_n_weights,
                    whitelisted=list(options.whitelisted),
                    elapsed_seconds=time.perf_counter() - started, palettize=options.palettize,
                    group_size=options.group_size)
    if chosen is not None:  # what the clustered tensors take as clustered
        units = [job.unit for job in jobs if job.unit is not None]
        ks = [job.k or 1 for job in jobs if job.unit is not None]
        report.budget = {**chosen, **budget.achieved(units, ks, options.palettize)}
    return report, [(job.ref, job.new) for job in jobs if job.new is not None]


def palettize_changes(graph_def: GraphDef, report: Report, changes: Sequence[Change], *,
                      prefix: str = "") -> list[Change]:
    """Put the planned changes into the palette form, in place; return those left as values.

    Each changed Const becomes its palette subgraph (:func:`minigraph.palette.palettize`, one
    palette per dtype with a global codebook) holding exactly the planned values; its report row
    gets the bits per index and the bytes its nodes take. A tensor the palette cannot hold
    exactly stays in the values form, with the reason in its row (``palette_skipped``).
    ``prefix`` is what the graph's row names start with in ``report`` (none by default).
    """
    rows = {row.name: row for row in report.tensors}
    given = {ref.name: values for ref, values in changes}
    infos = palette.palettize(graph_def, list(given), shared=report.global_clusters,
                              values=given, group_size=report.group_size)
    left = set()
    for info in infos:
        row = rows[prefix + info.name]
        if info.palettized:
            row.palette_bits, row.bytes_after = info.bits, info.stored_bytes
        else:
            row.palette_skipped = info.reason
            left.add(info.name)
    return [(ref, values) for ref, values in changes if ref.name in left]


def compress_in_place(graph_def: GraphDef, options: Options | None = None, *,
                      progress: Progress | None = None) -> Report:
    """Cluster the float Consts of ``graph_def`` in place (see :func:`compress`)."""
    options = (options or Options()).validate()
    report, changes = plan_compression(graph_def, options, progress=progress)
    if options.palettize:
        changes = palettize_changes(graph_def, report, changes)
    for ref, values in changes:
        codec.set_values(ref.tensor, values)
    return report


def compress(graph_def: GraphDef, *, n_clusters: int = 256, global_clusters: bool = False,
             whitelisted: Sequence[str] = (), min_n_weights: int = 256, method: str = "auto",
             init: str = "auto", seed: int = 0, workers: int | None = None,
             palettize: bool = False, group_size: int | None = None,
             progress: Progress | None = None) -> tuple[GraphDef, Report]:
    """Replace each eligible float Const's values by their cluster centroids.

    Eligible: Const/HostConst nodes of dtype half, bfloat16, float or double, in the main graph
    and in every library function, not whitelisted, with at least ``min_n_weights`` elements and
    more than ``n_clusters`` distinct values. Everything else stays byte for byte as it was.

    Parameters
    ----------
    graph_def : GraphDef
        Not modified.
    n_clusters : int
        At most this many distinct finite values per tensor (per graph with ``global_clusters``).
    global_clusters : bool
        One codebook for all selected tensors instead of one per tensor.
    whitelisted : sequence of str
        Node names or shell-style patterns not to touch; library nodes match as
        ``FUNCTION/NODE`` and by bare node name.
    min_n_weights : int
        Skip tensors with fewer elements.
    method, init, seed
        Passed to :func:`minigraph.cluster`.
    workers : int, optional
        Tensors clustered concurrently (default: up to 2 cores).
    palettize : bool
        Write each clustered Const in the palette form: its codebook, indices packed at
        ceil(log2 k) bits and core-op decode nodes ending in a node of the Const's name, whose
        output is bit-identical to the values form (:func:`minigraph.palette.palettize`).
    group_size : int, optional
        One codebook per group of this many channels of the last axis (output channels), not
        per tensor (:mod:`minigraph.groups`); not with ``global_clusters``.
    progress : callable, optional
        Called as ``progress(row, weights_done, weights_total)``: once with ``row=None`` before
        any work, then as each tensor completes.

    Returns
    -------
    (GraphDef, Report)
        The compressed copy and what was done to every Const.

    Raises
    ------
    ClusteringError
        For invalid options (``group_size`` with ``global_clusters`` among them).
    DecodeError
        Naming the node, for an inconsistent tensor.
    """
    out = GraphDef()
    out.CopyFrom(graph_def)
    options = Options(n_clusters, global_clusters, tuple(whitelisted), min_n_weights, method,
                      init, seed, workers, palettize, group_size)
    return out, compress_in_place(out, options, progress=progress)


def converge_weights(graph_def: GraphDef, whitelisted: Sequence[str] = (),
                     global_clusters: bool = False, n_clusters: int = 256, verbose: bool = True,
                     min_n_weights: int | None = None) -> GraphDef:
    """The 2016 ``converge_weights.py`` entry point: same signature, returns the new GraphDef.

    ``min_n_weights=None`` means no minimum (tensors with at most ``n_clusters`` values are
    skipped anyway, as in 2016). With ``verbose``, one line per tensor is logged at INFO level to
    the ``minigraph`` logger (library code does not print).
    """
    def log(row: TensorReport | None, done: int, total: int) -> None:
        if row is not None:
            _log.info("%s: %s", row.name, row.skipped or f"clustered, MSE {row.mse:.3g}")

    out, _ = compress(graph_def, n_clusters=n_clusters, global_clusters=global_clusters,
                      whitelisted=list(whitelisted), min_n_weights=min_n_weights or 0,
                      progress=log if verbose else None)
    return out
