"""Results as JSON-ready dicts and as text tables; returns strings and dicts, never prints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from .graph import escape
from .summary import GraphSummary

__all__ = ["FORMAT_VERSION", "TensorReport", "Report", "inspect_dict", "render_inspect",
           "render_inspect_savedmodel",
           "render_compress", "render_table", "format_bytes"]

# Bumped whenever a key changes meaning or disappears (adding keys does not bump it).
FORMAT_VERSION = 1


def format_bytes(n: int) -> str:
    """Human-readable size: ``812 B``, ``14.2 KiB``, ``96.0 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                 right: Sequence[bool] | None = None) -> str:
    """A plain-text table, columns padded to their widest cell (right-aligned where asked).

    Control characters in cells (node names come from the file) are escaped: one row, one line.
    """
    cells = [[escape(str(h)) for h in headers]] + [[escape(str(c)) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right = right or [False] * len(headers)
    lines = []
    for row in cells:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def inspect_dict(summary: GraphSummary, path: str, file_bytes: int) -> dict[str, Any]:
    """The ``inspect`` result for one file as a JSON-ready dict (sizes in bytes)."""
    consts = []
    by_dtype: dict[str, dict[str, int]] = {}
    for row in summary.consts:
        info = row.info
        consts.append({"name": row.name, "function": row.function, "dtype": info.dtype_name,
                       "shape": list(info.shape), "elements": info.n_elements,
                       "encoding": info.encoding, "stored_values": info.n_stored,
                       "distinct_values": row.distinct, "bytes": info.nbytes})
        totals = by_dtype.setdefault(info.dtype_name, {"consts": 0, "elements": 0, "bytes": 0})
        totals["consts"] += 1
        totals["elements"] += info.n_elements
        totals["bytes"] += info.nbytes
    palettes = [{"name": info.name, "function": info.function, "dtype": info.dtype,
                 "shape": list(info.shape), "k": info.k, "bits": info.bits,
                 "stored_bytes": info.stored_bytes, "shared_palette": info.shared_palette}
                for info in summary.palettes]
    return {
        "file": path,
        "file_bytes": file_bytes,
        "nodes": summary.n_nodes,
        "functions": summary.n_functions,
        "consts": consts,
        "palettes": palettes,
        "totals": {"consts": len(consts),
                   "elements": sum(t["elements"] for t in by_dtype.values()),
                   "bytes": sum(t["bytes"] for t in by_dtype.values()),
                   "by_dtype": dict(sorted(by_dtype.items())),
                   "palettized": len(palettes),
                   "palettized_bytes": sum(p["stored_bytes"] for p in palettes)},
    }


def render_inspect(result: dict[str, Any]) -> str:
    """The text form of :func:`inspect_dict`: a table of Consts, then totals per dtype."""
    rows = [(c["name"], c["dtype"], _shape_text(c["shape"]), c["elements"], c["encoding"],
             c["distinct_values"], format_bytes(c["bytes"])) for c in result["consts"]]
    headers = ("const", "dtype", "shape", "elements", "encoding", "distinct", "bytes")
    right = (False, False, False, True, False, True, True)
    totals = result["totals"]
    dtype_rows = [(name, t["consts"], t["elements"], format_bytes(t["bytes"]))
                  for name, t in totals["by_dtype"].items()]
    dtype_rows.append(("all", totals["consts"], totals["elements"], format_bytes(totals["bytes"])))
    head = (f"{result['file']}: {format_bytes(result['file_bytes'])}, {result['nodes']} nodes, "
            f"{result['functions']} library functions, {totals['consts']} consts"
            f"{', ' + str(totals['palettized']) + ' palettized tensors' if totals.get('palettized') else ''}")
    parts = [head]
    if rows:
        parts += ["", render_table(headers, rows, right)]
    palettes = [(p["name"], p["dtype"], _shape_text(p["shape"]), p["k"], p["bits"],
                 format_bytes(p["stored_bytes"])) for p in result.get("palettes", [])]
    if palettes:
        parts += ["", render_table(("palettized", "dtype", "shape", "k", "bits", "stored bytes"),
                                   palettes, (False, False, False, True, True, True))]
    parts += ["", render_table(("dtype", "consts", "elements", "bytes"), dtype_rows,
                               (False, True, True, True))]
    return "\n".join(parts)


def render_expand(result: dict[str, Any]) -> str:
    """One line for ``minigraph expand``: what was restored and the sizes."""
    return (f"{result['file']} -> {result['output']}: {len(result['expanded'])} palettized "
            f"tensors expanded; file {format_bytes(result['bytes_before'])} -> "
            f"{format_bytes(result['bytes_after'])}")


def render_inspect_savedmodel(result: dict[str, Any]) -> str:
    """The text form of ``savedmodel.inspect_savedmodel``: variables, then each meta graph's Consts."""
    totals = result["totals"]
    parts = [f"{result['path']}: {format_bytes(result['bytes'])} in {len(result['files'])} files, "
             f"{len(result['meta_graphs'])} meta graphs, {totals['variables']} variables"
             f"{'' if result['fingerprint'] else ', no fingerprint.pb'}"]
    rows = [(v["key"], v["object_path"] or "-", v["dtype"], _shape_text(v["shape"]),
             v["elements"], "-" if v["distinct_values"] is None else v["distinct_values"],
             format_bytes(v["bytes"])) for v in result["variables"]]
    if rows:
        parts += ["", render_table(("variable", "object path", "dtype", "shape", "elements",
                                    "distinct", "bytes"), rows,
                                   (False, False, False, False, True, True, True))]
    dtype_rows = [(name, t["variables"], t["elements"], format_bytes(t["bytes"]))
                  for name, t in totals["by_dtype"].items()]
    dtype_rows.append(("all", totals["variables"], totals["elements"], format_bytes(totals["bytes"])))
    parts += ["", render_table(("dtype", "variables", "elements", "bytes"), dtype_rows,
                               (False, True, True, True))]
    for number, meta in enumerate(result["meta_graphs"]):
        graph = {"file": f"meta graph {number} (tags {', '.join(meta['tags']) or '-'})",
                 "file_bytes": result["files"].get("saved_model.pb", 0), **meta}
        parts += ["", render_inspect(graph)]
    return "\n".join(parts)


@dataclass
class TensorReport:
    """What compression did to one Const: ``skipped`` holds the reason when it was left alone."""

    name: str
    function: str | None
    dtype: str
    shape: tuple[int, ...]
    elements: int
    skipped: str | None = None
    method: str | None = None
    iterations: int | None = None
    distinct_before: int | None = None
    distinct_after: int | None = None
    mse: float | None = None
    sqnr_db: float | None = None
    max_abs_error: float | None = None
    bytes_before: int | None = None  # the Const's stored bytes (its TensorProto's payload)
    bytes_after: int | None = None  # the same after; in the palette form, its nodes' bytes
    palette_bits: int | None = None  # bits per stored index, when written in the palette form
    palette_skipped: str | None = None  # why a clustered tensor stayed in the values form
    group_size: int | None = None  # channels per codebook, when clustered group by group
    groups: int | None = None  # codebooks of the tensor (groups of its last axis)
    figure: dict[str, Any] | None = None  # plot data (compress.Options.figure_data); see plotdata
    k: int | None = None  # with a per-tensor k (budget or SQNR floor): the codebook's size
    bits: int | None = None  # ... and the bits per index it counts (ceil(log2 k))

    @property
    def clustered(self) -> bool:
        """True when the tensor's values were replaced by centroids."""
        return self.skipped is None and self.distinct_after is not None


@dataclass
class Report:
    """The result of compressing one graph: options used, one row per Const, sorted by name.

    The command line adds file-level facts (paths, sizes before and after) under ``files``.
    """

    tensors: list[TensorReport]
    n_clusters: int
    global_clusters: bool
    method: str
    init: str
    seed: int
    min_n_weights: int
    whitelisted: list[str]
    elapsed_seconds: float
    palettize: bool = False
    files: dict[str, Any] = field(default_factory=dict)
    group_size: int | None = None
    # With a per-tensor k: the target (bits_per_weight, objective, solver; or min_sqnr),
    # palette_form, and what the clustered weights take (weights, average_bits_per_weight:
    # indices, plus palettes in the palette form).
    budget: dict[str, Any] | None = None

    @property
    def clustered(self) -> list[TensorReport]:
        """Rows of the tensors that were clustered."""
        return [row for row in self.tensors if row.clustered]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: snake_case keys, sizes in bytes, no NaN or infinity (None instead)."""
        rows = []
        for row in self.tensors:
            item = asdict(row)
            item["shape"] = list(row.shape)
            item["clustered"] = row.clustered
            if item["figure"] is None:  # only a run asked for figure data has the key
                del item["figure"]
            rows.append({k: _finite(v) for k, v in item.items()})
        clustered = self.clustered
        return {
            **self.files,
            "options": {"n_clusters": self.n_clusters, "global_clusters": self.global_clusters,
                        "method": self.method, "init": self.init, "seed": self.seed,
                        "min_n_weights": self.min_n_weights, "whitelisted": self.whitelisted,
                        "palettize": self.palettize, "group_size": self.group_size},
            "tensors": rows,
            "totals": {"consts": len(rows), "clustered": len(clustered),
                       "skipped": len(rows) - len(clustered),
                       "weights_clustered": sum(row.elements for row in clustered),
                       "palettized": sum(1 for row in clustered if row.palette_bits),
                       "tensor_bytes_before": sum(row.bytes_before or 0 for row in self.tensors),
                       "tensor_bytes_after": sum(row.bytes_after or 0 for row in self.tensors),
                       **({"budget": self.budget} if self.budget else {}),
                       "elapsed_seconds": round(self.elapsed_seconds, 4)},
        }

    def to_text(self) -> str:
        """The human table (see :func:`render_compress`)."""
        return render_compress(self.to_dict())


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _stored(row: dict[str, Any]) -> str:
    """``before -> after`` bytes of a tensor, and its form when palettized (``8-bit palette``)."""
    if row.get("bytes_before") is None:
        return "-"
    text = f"{format_bytes(row['bytes_before'])} -> {format_bytes(row['bytes_after'])}"
    return text + (f" ({row['palette_bits']}-bit palette)" if row.get("palette_bits") else "")


def _groups_text(group_size: int | None) -> str:
    return f", one codebook per {group_size} output channels" if group_size else ""


def _group_cell(row: dict[str, Any]) -> str:
    """``16 x 8ch``: 16 codebooks of 8 output channels each; ``-`` for one codebook."""
    return f"{row['groups']} x {row['group_size']}ch" if row.get("groups") else "-"


def render_compress(result: dict[str, Any]) -> str:
    """The text form of :meth:`Report.to_dict`: clustered Consts, skipped ones, totals."""
    done = [t for t in result["tensors"] if t["clustered"]]
    left = [t for t in result["tensors"] if not t["clustered"]]
    parts = []
    if "file" in result:
        parts.append(f"{result['file']} -> {result.get('output') or '(not written)'}")
    chosen = result["totals"].get("budget")
    if done:
        grouped = any(t.get("groups") for t in done)
        rows = [(t["name"], t["dtype"], _shape_text(t["shape"]), t["elements"],
                 f"{t['distinct_before']} -> {t['distinct_after']}", _num(t["mse"], ".3g"),
                 _num(t["sqnr_db"], ".1f"), _num(t["max_abs_error"], ".3g"))
                + ((t["k"], t["bits"]) if chosen else ())
                + ((_group_cell(t),) if grouped else ()) + (_stored(t),) for t in done]
        headers = ("clustered", "dtype", "shape", "elements", "distinct", "mse", "sqnr_db",
                   "max_abs_err") + (("k", "bits") if chosen else ()) \
            + (("groups",) if grouped else ()) + ("stored bytes",)
        parts += ["", render_table(headers, rows, (False, False, False) + (True,) *
                                   (len(headers) - 4) + (False,))]
        kept = [f"  {t['name']}: {t['palette_skipped']}" for t in done if t["palette_skipped"]]
        if kept:
            parts += ["", "kept in the values form:", *kept]
    if left:
        skipped = [(t["name"], t["dtype"], _shape_text(t["shape"]), t["elements"], t["skipped"])
                   for t in left]
        parts += ["", render_table(("skipped", "dtype", "shape", "elements", "reason"), skipped,
                                   (False, False, False, True, False))]
    totals = result["totals"]
    line = (f"{totals['clustered']} of {totals['consts']} consts clustered "
            f"({totals['weights_clustered']} weights, k{'≤' if chosen else '='}"
            f"{result['options']['n_clusters']}{' per tensor' if chosen else ''}"
            f"{', global codebook' if result['options']['global_clusters'] else ''}"
            f"{', ' + str(totals['palettized']) + ' palettized' if totals['palettized'] else ''}"
            f"{_groups_text(result['options'].get('group_size'))})")
    sizes = []
    if "bytes_before" in result:
        sizes.append(f"file {format_bytes(result['bytes_before'])} -> "
                     f"{format_bytes(result['bytes_after'])}")
    if result.get("gzip_bytes_before") is not None:
        before, after = result["gzip_bytes_before"], result["gzip_bytes_after"]
        sizes.append(f"gzip -9 {format_bytes(before)} -> {format_bytes(after)} "
                     f"({before / max(after, 1):.2f}x smaller)")
    seconds = result.get("elapsed_seconds", totals["elapsed_seconds"])
    sizes.append(f"{seconds:.2f} s")
    parts += ["", line, "; ".join(sizes)]
    if chosen:
        target = (f"at least {chosen['min_sqnr']:g} dB per tensor" if "min_sqnr" in chosen else
                  f"{chosen['bits_per_weight']:g} bits per weight ({chosen['objective']} "
                  f"error, {chosen['solver']} solver)")
        parts.append(f"budget {target}: the {chosen['weights']} weights take "
                     f"{chosen['average_bits_per_weight']:.3f} bits each (indices"
                     f"{' + palettes' if chosen['palette_form'] else ''})")
        if chosen.get("group_sizes_tried"):
            tried = ", ".join(str(size) for size in chosen["group_sizes_tried"])
            parts.append(f"codebooks per tensor or (k ≤ {chosen['group_k_max']}) per group of "
                         f"{tried} output channels, whichever the budget found best "
                         f"(column groups)")
    return "\n".join(parts).lstrip("\n")
