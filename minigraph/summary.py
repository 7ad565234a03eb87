"""What a GraphDef's Const nodes hold, without changing anything (the ``inspect`` command)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import codec
from .errors import DecodeError
from .graph import ConstRef, iter_consts
from .palette import PaletteInfo, find_palettes
from .schema import GraphDef

__all__ = ["ConstSummary", "GraphSummary", "summarize_graph", "count_distinct"]


@dataclass(frozen=True)
class ConstSummary:
    """One Const: where it is, what it holds and how it is stored."""

    name: str
    function: str | None
    info: codec.TensorInfo
    distinct: int


@dataclass(frozen=True)
class GraphSummary:
    """Every Const of a graph, sorted by name, with the graph's node and function counts."""

    consts: tuple[ConstSummary, ...]
    n_nodes: int
    n_functions: int
    palettes: tuple[PaletteInfo, ...] = ()  # tensors stored in the palette form


def count_distinct(ref: ConstRef, info: codec.TensorInfo) -> int:
    """Distinct values of a Const, decoding only what is stored (splats are never expanded).

    NaNs count as one value, as do 0.0 and -0.0.
    """
    if info.encoding in ("empty", "zeros", "splat"):
        return info.max_distinct
    # A padded list repeats its last stored value: the stored values are all there is.
    values = codec.stored_values(ref.tensor)
    if values.dtype == object:
        return len(set(values.reshape(-1).tolist()))
    return int(np.unique(values.reshape(-1)).size)



def summarize_graph(graph_def: GraphDef) -> GraphSummary:
    """Summarise every Const in the main graph and the function library.

    Raises
    ------
    DecodeError
        Naming the node, if a Const's tensor is inconsistent or of an unsupported dtype.
    """
    rows = []
    for ref in iter_consts(graph_def):
        try:
            info = codec.describe(ref.tensor)
            distinct = count_distinct(ref, info)
        except DecodeError as exc:
            raise ref.locate(exc) from None
        rows.append(ConstSummary(ref.name, ref.function, info, distinct))
    rows.sort(key=lambda row: row.name)
    n_nodes = len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)
    palettes = tuple(sorted(find_palettes(graph_def), key=lambda info: info.name))
    return GraphSummary(tuple(rows), n_nodes, len(graph_def.library.function), palettes)
