"""What a SavedModel directory holds, without changing anything (``minigraph inspect DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import codec, dtypes
from .bundle import Bundle
from .objectgraph import OBJECT_GRAPH_KEY, variable_names
from .report import FORMAT_VERSION, inspect_dict
from .savedmodel import (FINGERPRINT, SAVED_MODEL, PathLike, is_fixed_size, read_savedmodel)
from .schema import SavedModel
from .summary import summarize_graph

__all__ = ["inspect_savedmodel"]


def _distinct(bundle: Bundle, key: str) -> int:
    """Distinct values of a fixed-size variable (NaNs as one, 0.0 and -0.0 as one)."""
    values = bundle.array(key)
    if bundle.entries[key].dtype == dtypes.DT_BFLOAT16:  # stored as bit patterns
        values = codec.bfloat16_to_float32(values)
    return int(np.unique(values).size)


def _variable_rows(saved_model: SavedModel, bundle: Bundle) -> list[dict[str, Any]]:
    names = variable_names(saved_model, bundle)
    rows = []
    for key, entry in bundle.entries.items():
        if key == OBJECT_GRAPH_KEY:
            continue
        aliases = names.get(key, ())
        fixed = is_fixed_size(entry.dtype)
        elements = int(np.prod([d.size for d in entry.shape.dim], dtype=np.int64))
        rows.append({"key": key, "object_path": aliases[0] if aliases else None,
                     "name": aliases[1] if len(aliases) > 1 else None,
                     "dtype": dtypes.dtype_name(entry.dtype),
                     "shape": [d.size for d in entry.shape.dim], "elements": elements,
                     "bytes": entry.size, "shard": entry.shard_id,
                     "distinct_values": _distinct(bundle, key) if fixed else None})
    return rows


def inspect_savedmodel(src: PathLike) -> dict[str, Any]:
    """What a SavedModel holds, as a JSON-ready dict (nothing is changed).

    Keys: ``format_version``, ``path``, ``bytes`` (all files), ``files`` (relative path ->
    bytes), ``fingerprint`` (present or not), ``meta_graphs`` (tags, signature names and the
    ``inspect`` dict of its GraphDef's Consts, as for a ``.pb``), ``variables`` (one dict per
    checkpoint key: object path, variable name, dtype, shape, elements, bytes, shard, distinct
    values), and ``totals`` of the variables by dtype.

    Raises
    ------
    MinigraphError
        As :func:`read_savedmodel`, or a DecodeError naming an inconsistent Const.
    """
    src = Path(src)
    saved_model, bundle = read_savedmodel(src)
    files = {str(p.relative_to(src)): p.stat().st_size for p in sorted(src.rglob("*")) if p.is_file()}
    meta_graphs = []
    for meta_graph in saved_model.meta_graphs:
        consts = inspect_dict(summarize_graph(meta_graph.graph_def), str(src / SAVED_MODEL),
                              files[SAVED_MODEL])
        meta_graphs.append({"tags": list(meta_graph.meta_info_def.tags),
                            "signatures": sorted(meta_graph.signature_def),
                            **{k: consts[k] for k in ("nodes", "functions", "consts", "totals")}})
    variables = _variable_rows(saved_model, bundle) if bundle is not None else []
    by_dtype: dict[str, dict[str, int]] = {}
    for row in variables:
        totals = by_dtype.setdefault(row["dtype"], {"variables": 0, "elements": 0, "bytes": 0})
        totals["variables"] += 1
        totals["elements"] += row["elements"]
        totals["bytes"] += row["bytes"]
    return {"format_version": FORMAT_VERSION, "path": str(src), "bytes": sum(files.values()),
            "files": files, "fingerprint": FINGERPRINT in files, "meta_graphs": meta_graphs,
            "variables": variables,
            "totals": {"variables": len(variables),
                       "elements": sum(t["elements"] for t in by_dtype.values()),
                       "bytes": sum(t["bytes"] for t in by_dtype.values()),
                       "by_dtype": dict(sorted(by_dtype.items()))}}
