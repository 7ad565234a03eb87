"""Choosing the Consts to cluster and planning a compression: graph x codec x engine -> new
values and a report; the palette form and the public compress() API."""

from __future__ import annotations

import fnmatch
import logging
import time
from typing import Callable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import budget, codec, dtypes, packing, palette
from .errors import DecodeError
from .graph import ConstRef, iter_consts
from .options import Options
from .plotdata import add_figure_data
from .report import Report, TensorReport
from .schedule import Job, choose_ks, run_global, run_local
from .schema import GraphDef

__all__ = ["Options", "compress", "compress_in_place", "plan_compression", "palettize_changes",
           "as_changes", "converge_weights"]

_log = logging.getLogger("minigraph")
# The memory rule: a tensor is expanded only if it decodes to at most 16 MiB or 16 times the
# bytes it stores; beyond, it stays as stored. A short typed list is padded with its last value
# (MakeNdarray, tensorflow/python/framework/tensor_util.py): a few bytes can declare gigabytes,
# and a clustered tensor is written back whole. Other encodings decode to at most 4x their size.
EXPAND_FLOOR_BYTES = 16 << 20
EXPAND_RATIO = 16


# A Const and its new values; as planned, with coded=True, they may be kept as their palette
# and labels instead (Planned), which only palettize_changes takes as they are.
Change = Tuple[ConstRef, np.ndarray]
Planned = Tuple[ConstRef, Union[np.ndarray, packing.Coded]]


def as_changes(planned: Sequence[Planned]) -> list[Change]:
    """Planned changes with every tensor's values as an array."""
    return [(ref, packing.as_values(values)) for ref, values in planned]


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
            lifted: Mapping[bytes, memoryview]) -> tuple[list[Job], list[TensorReport]]:
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
            jobs.append(Job(ref, info, row, content))
        else:
            row.skipped = reason
    return jobs, rows


Progress = Callable[[Optional[TensorReport], int, int], None]


def plan_compression(graph_def: GraphDef, options: Options | None = None, *,
                     progress: Progress | None = None,
                     lifted: Mapping[bytes, memoryview] | None = None,
                     coded: bool = False) -> tuple[Report, list[Planned]]:
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

    chosen = choose_ks(jobs, options) if options.per_tensor_k else None
    run = run_global if options.global_clusters else run_local
    run(jobs, options, tick)
    for job in jobs:
        if job.new is not None:  # written back as tensor_content
            job.row.bytes_after = job.info.n_elements * dtypes.lookup(job.info.dtype).itemsize
    if options.figure_data:
        add_figure_data(graph_def, rows, {job.ref.name: packing.as_values(job.new) for job in jobs
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
    return report, [(job.ref, job.new if coded else packing.as_values(job.new))
                    for job in jobs if job.new is not None]


def palettize_changes(graph_def: GraphDef, report: Report, changes: Sequence[Planned], *,
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
    sizes = {name: rows[prefix + name].group_size for name in given}  # chosen per tensor
    infos = palette.palettize(graph_def, list(given), shared=report.global_clusters,
                              values=given, group_size=sizes)
    left = set()
    for info in infos:
        row = rows[prefix + info.name]
        if info.palettized:
            row.palette_bits, row.bytes_after = info.bits, info.stored_bytes
        else:
            row.palette_skipped = info.reason
            left.add(info.name)
    return [(ref, packing.as_values(values)) for ref, values in changes if ref.name in left]


def compress_in_place(graph_def: GraphDef, options: Options | None = None, *,
                      progress: Progress | None = None) -> Report:
    """Cluster the float Consts of ``graph_def`` in place (see :func:`compress`)."""
    options = (options or Options()).validate()
    report, planned = plan_compression(graph_def, options, progress=progress,
                                       coded=options.palettize)
    changes = (palettize_changes(graph_def, report, planned) if options.palettize
               else as_changes(planned))
    for ref, values in changes:
        codec.set_values(ref.tensor, values)
    return report


def compress(graph_def: GraphDef, *, n_clusters: int = 256, global_clusters: bool = False,
             whitelisted: Sequence[str] = (), min_n_weights: int = 256, method: str = "auto",
             init: str = "auto", seed: int = 0, workers: int | None = None,
             palettize: bool = False, group_size: int | None = None,
             bits_per_weight: float | None = None, min_sqnr: float | None = None,
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
    bits_per_weight : float, optional
        Give each tensor its own k (at most ``n_clusters``) so that the clustered weights take
        at most this many bits each on average, with the least total relative error
        (:mod:`minigraph.budget`).
    min_sqnr : float, optional
        Give each tensor the smallest k (at most ``n_clusters``) whose SQNR reaches this many dB.
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
    options = Options(n_clusters=n_clusters, global_clusters=global_clusters,
                      whitelisted=tuple(whitelisted), min_n_weights=min_n_weights, method=method,
                      init=init, seed=seed, workers=workers, palettize=palettize,
                      group_size=group_size, bits_per_weight=bits_per_weight,
                      min_sqnr=min_sqnr)
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
