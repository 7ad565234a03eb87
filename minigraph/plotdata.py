"""What a figure needs, measured during a compression run: histograms, codebooks, SQNR curves.

Nothing here imports matplotlib: the numbers go into the report (``TensorReport.figure``) as
plain lists, and :mod:`minigraph.plot` draws them later without touching the model again.
"""

from __future__ import annotations

import fnmatch
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from . import codec, dtypes
from .graph import ConstRef, iter_consts
from .report import TensorReport
from .schema import GraphDef

if TYPE_CHECKING:
    from .compress import Options

__all__ = ["FIGURE_TENSORS", "FIGURE_MAX", "HISTOGRAM_BINS", "CURVE_BITS", "CURVE_SAMPLE",
           "add_figure_data",
           "tensor_figure", "pick_consts"]

FIGURE_TENSORS = 6  # the largest this many float Consts, unless patterns name others
FIGURE_MAX = 9  # at most this many matching patterns (the largest): a 3×3 grid, ten colours
HISTOGRAM_BINS = 80  # fine enough to show a Laplace peak, coarse enough to stay readable
CURVE_BITS = tuple(range(1, 9))  # k = 2, 4, ..., 256: the indices a byte can hold
# The curve is estimated on at most this many values: below the engine's threshold for its
# binned path (2**18), where eight sorted-path clusterings of a sample cost ~0.15 s; measured
# on a 1M-weight Laplace-like tensor the sample's SQNR is within 0.15 dB of the full one.
CURVE_SAMPLE = (1 << 18) - 1
_MAX_DECODE_BYTES = 1 << 31  # a padded list is expanded only below protobuf's own size limit


def _matches(ref: ConstRef, patterns: Sequence[str]) -> bool:
    """The whitelist's rule: a library node matches as ``FUNCTION/NODE`` and as ``NODE``."""
    names = [ref.name] if ref.function is None else [ref.name, ref.node.name]
    return any(fnmatch.fnmatchcase(name, p) for name in names for p in patterns)


def pick_consts(graph_def: GraphDef, patterns: Sequence[str] = (), top: int = FIGURE_TENSORS,
                lifted: Mapping[bytes, memoryview] | None = None
                ) -> list[tuple[ConstRef, codec.TensorInfo, memoryview | None]]:
    """The float Consts to draw, largest first (ties by name): the ``top`` largest, or with
    ``patterns`` the FIGURE_MAX largest of those matching.

    Only Consts whose values are stored element by element qualify (a splat, all-zeros or empty
    tensor has nothing to show and is never expanded).
    """
    chosen = []
    for ref in iter_consts(graph_def):
        content = lifted.get(ref.tensor.tensor_content) if lifted else None
        info = codec.describe(ref.tensor, content)
        if info.dtype not in dtypes.FLOAT_TYPES or info.encoding in ("splat", "zeros", "empty"):
            continue
        if info.n_elements * 8 > _MAX_DECODE_BYTES:
            continue
        if patterns and not _matches(ref, patterns):
            continue
        chosen.append((ref, info, content))
    chosen.sort(key=lambda item: (-item[1].n_elements, item[0].name))
    return chosen[:FIGURE_MAX if patterns else top]


def _histogram(finite: np.ndarray) -> dict[str, Any]:
    """Counts in HISTOGRAM_BINS equal bins over [min, max] (numpy widens a zero-width range)."""
    if finite.size == 0:
        return {"range": None, "counts": [0] * HISTOGRAM_BINS}
    lo, hi = float(finite.min()), float(finite.max())
    counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS, range=(lo, hi) if hi > lo else None)
    return {"range": [float(edges[0]), float(edges[-1])], "counts": counts.tolist()}


def _sqnr_db(signal: float, mse: float) -> float | None:
    """10 log10(mean square / MSE); None when there is no error (or no signal)."""
    return 10.0 * math.log10(signal / mse) if mse > 0 and signal > 0 else None


def _sample(finite: np.ndarray) -> np.ndarray:
    """At most CURVE_SAMPLE values drawn without replacement (fixed seed), in their order."""
    if finite.size <= CURVE_SAMPLE:
        return finite
    picks = np.random.default_rng(0).choice(finite.size, size=CURVE_SAMPLE, replace=False)
    picks.sort()
    return finite[picks]


def _curve(finite: np.ndarray, n_distinct: int, options: Options) -> dict[str, Any]:
    """SQNR at each of CURVE_BITS, on a sample of the values; None from the first b with
    2**b >= the distinct values (reproduced exactly there, so no clustering is run)."""
    from minigraph import cluster  # the public engine API (imported here: the package is loaded)

    sample = _sample(finite)
    signal = float(np.mean(np.square(sample, dtype=np.float64))) if sample.size else 0.0
    curve: list[float | None] = []
    for bits in CURVE_BITS:
        k = 1 << bits
        if k >= n_distinct:
            curve.append(None)
            continue
        result = cluster(sample, k, method=options.method, init=options.init, seed=options.seed)
        curve.append(_sqnr_db(signal, result.mse))
    return {"bits": list(CURVE_BITS), "sqnr_db": curve, "sample": int(sample.size)}


def _bits(k: int) -> int:
    """Bits per index for a codebook of k entries: ceil(log2 k), 0 for k = 1."""
    return max(0, (k - 1).bit_length())


def tensor_figure(values: np.ndarray, new: np.ndarray | None, info: codec.TensorInfo,
                  row: TensorReport, options: Options) -> dict[str, Any]:
    """One tensor's figure data, JSON-ready.

    Parameters
    ----------
    values : ndarray of shape (n,), float16 / float32 / float64
        The tensor's original values (NaN and ±Inf are left out of everything).
    new : ndarray of shape (n,), or None
        Its clustered values, None when it was not clustered.
    info, row
        The Const's stored facts and its report row (its SQNR marks the chosen point).
    options : Options
        The run's k, method, init and seed (the curve is clustered the same way).

    Returns
    -------
    dict
        ``histogram`` (``range`` [lo, hi] and ``counts``, which sum to the finite values),
        ``codebook`` (sorted distinct values after clustering; for a tensor left as it was, its
        distinct values if there are at most k of them, else empty), ``bytes_before`` /
        ``bytes_after`` (stored bytes of its TensorProto), ``curve`` (``bits``, ``sqnr_db``, None
        where exact, and ``sample``, the number of values it was measured on: all finite
        values up to CURVE_SAMPLE, else a fixed random sample of that many) and ``chosen``
        (``bits`` and ``sqnr_db`` of this run, measured on every value; or None).
    """
    finite = values[np.isfinite(values)]
    distinct = np.unique(finite)
    k = options.n_clusters
    if new is not None:
        codebook = np.unique(new[np.isfinite(new)])
        chosen: dict[str, Any] | None = {"bits": _bits(k), "sqnr_db": row.sqnr_db}
        bytes_after = new.size * dtypes.lookup(info.dtype).itemsize  # written as tensor_content
    else:
        codebook = distinct if distinct.size <= k else distinct[:0]
        chosen = {"bits": _bits(max(1, distinct.size)), "sqnr_db": None} if codebook.size else None
        bytes_after = info.nbytes
    return {"histogram": _histogram(finite),
            "codebook": codebook.astype(np.float64).tolist(),
            "bytes_before": info.nbytes, "bytes_after": bytes_after,
            "curve": _curve(finite, distinct.size, options),
            "chosen": chosen}


def add_figure_data(graph_def: GraphDef, rows: Sequence[TensorReport],
                    new_values: Mapping[str, np.ndarray], options: Options,
                    lifted: Mapping[bytes, memoryview] | None = None) -> None:
    """Fill ``row.figure`` for the Consts :func:`pick_consts` picks (``options.figure_tensors``).

    ``new_values`` maps Const names to their clustered values. Costs, per tensor drawn, a pass
    for its distinct values and histogram, and up to eight clusterings (k = 2 ... 256) of at
    most CURVE_SAMPLE of its values: ~0.4 s for the six largest tensors of a 4.2M-weight
    model on two busy cores (tests/bench/bench_plot.py).
    """
    by_name = {row.name: row for row in rows}
    picked = [(ref, info, content, by_name[ref.name]) for ref, info, content
              in pick_consts(graph_def, options.figure_tensors, lifted=lifted)
              if ref.name in by_name]

    def fill(item: tuple[ConstRef, codec.TensorInfo, memoryview | None, TensorReport]) -> None:
        ref, info, content, row = item
        values = codec.to_array(ref.tensor, content).reshape(-1)
        row.figure = tensor_figure(values, new_values.get(ref.name), info, row, options)

    # The engine's kernels release the GIL: tensors run side by side, as in the run itself.
    workers = options.workers or min(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fill, sorted(picked, key=lambda item: -item[1].n_elements)))
