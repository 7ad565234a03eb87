"""Results as JSON-ready dicts and as text tables; returns strings and dicts, never prints."""

from __future__ import annotations

from typing import Any, Sequence

from .summary import GraphSummary

__all__ = ["FORMAT_VERSION", "inspect_dict", "render_inspect", "render_table", "format_bytes"]

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
    """A plain-text table, columns padded to their widest cell (right-aligned where asked)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right = right or [False] * len(headers)
    lines = []
    for row in cells:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)]
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
    return {
        "file": path,
        "file_bytes": file_bytes,
        "nodes": summary.n_nodes,
        "functions": summary.n_functions,
        "consts": consts,
        "totals": {"consts": len(consts),
                   "elements": sum(t["elements"] for t in by_dtype.values()),
                   "bytes": sum(t["bytes"] for t in by_dtype.values()),
                   "by_dtype": dict(sorted(by_dtype.items()))},
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
            f"{result['functions']} library functions, {totals['consts']} consts")
    parts = [head]
    if rows:
        parts += ["", render_table(headers, rows, right)]
    parts += ["", render_table(("dtype", "consts", "elements", "bytes"), dtype_rows,
                               (False, True, True, True))]
    return "\n".join(parts)
