"""The palette form: each chosen Const rebuilt in the graph from a small palette and packed indices.

A Const ``NAME`` of the values form (at most a few hundred distinct values, as ``compress``
writes it) becomes a palette Const holding its distinct bit patterns, an index Const, and decode
ops of core TensorFlow whose last node is named ``NAME`` and yields the Const's tensor bit for
bit (NaN payloads, -0.0 and ±Inf are palette entries like any other pattern). ``expand`` turns
every palette subgraph back into the Const, byte for byte. The node layouts are described in
``palette_nodes``; the index packing in ``packing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

import numpy as np

from . import packing
from .dtypes import dtype_name
from .errors import DecodeError, GraphError
from .graph import CONST_OPS
from .palette_plan import choose_layout, plan_const
from .palette_detect import detect
from .palette_nodes import (MARKER, Plan, Scope, build, group_of, inner_names, restore,
                            shared_node, source)
from .schema import GraphDef, NodeDef

__all__ = ["MARKER", "PaletteInfo", "palettize", "expand", "find_palettes", "palette_parts"]



@dataclass(frozen=True)
class PaletteInfo:
    """One tensor's palette form, or why it was left as values (``reason``).

    ``bits`` is what each index takes in the file (8 for uint8 indices, whatever k is);
    ``stored_bytes`` is the serialized size of the tensor's own nodes (a shared palette, named by
    ``shared_palette``, is not counted); ``name`` is ``NODE`` or ``FUNCTION/NODE``.
    """

    name: str
    function: str | None
    dtype: str
    shape: tuple[int, ...]
    k: int = 0
    bits: int = 0
    stored_bytes: int = 0
    shared_palette: str | None = None
    reason: str | None = None
    groups: int = 1  # palettes of the tensor: one per group of output channels
    group_size: int | None = None  # channels per group (last axis), None for one palette

    @property
    def palettized(self) -> bool:
        """True when the tensor is in the palette form."""
        return self.reason is None


def _scopes(graph_def: GraphDef) -> Iterator[Scope]:
    yield Scope(None, graph_def.node)
    for function in graph_def.library.function:
        yield Scope(function.signature.name, function.node_def)


def _base(taken: set[str], start: list[int]) -> str:
    """The first ``minigraph/p<i>`` (from ``start[0]`` on) none of whose inner names is taken."""
    while True:
        base = f"minigraph/p{start[0]}"
        start[0] += 1
        if all(name not in taken for name in inner_names("", "", base).values()):
            return base


def _info(scope: Scope, plan: Plan, stored_bytes: int) -> PaletteInfo:
    tensor = plan.stripped.attr["value"].tensor
    return PaletteInfo(scope.key(plan.name), scope.function, dtype_name(tensor.dtype),
                       tuple(int(d.size) for d in tensor.tensor_shape.dim), plan.k,
                       plan.bits, stored_bytes, plan.shared, groups=plan.groups,
                       group_size=plan.group or None)


def _survey(graph_def: GraphDef) -> tuple[dict[str, PaletteInfo], set[str]]:
    """Every palette by name, and the names of all nodes palettes are made of."""
    infos: dict[str, PaletteInfo] = {}
    parts: set[str] = set()
    for scope in _scopes(graph_def):
        for found in detect(scope):
            infos[scope.key(found.plan.name)] = _info(scope, found.plan, found.stored_bytes)
            parts.update(scope.key(name) for name in found.own)
            if found.plan.shared is not None:
                parts.add(scope.key(found.plan.shared))
    return infos, parts


def find_palettes(graph_def: GraphDef) -> list[PaletteInfo]:
    """Every palettized tensor of a graph (main graph, then library functions, in node order).

    Returns
    -------
    list of PaletteInfo
        Name, dtype, shape, palette size k (per group), bits per index, the bytes its own
        nodes take, and the number of palettes (``groups``, with ``group_size`` channels each).
    """
    return list(_survey(graph_def)[0].values())


def palette_parts(graph_def: GraphDef) -> frozenset[str]:
    """Every node that belongs to a palette subgraph, shared palettes included.

    Returns
    -------
    frozenset of str
        Names as ``graph.iter_consts`` gives them (``NODE`` or ``FUNCTION/NODE``): the
        compressor skips the Consts among them, so compressing a palettized graph again leaves
        its palettes as they are.
    """
    return frozenset(_survey(graph_def)[1])


def _left(scope: Scope, node: NodeDef, reason: str) -> PaletteInfo:
    """The answer for a node left in the values form."""
    dtype, shape = "", ()  # type: tuple[str, tuple[int, ...]]
    if "value" in node.attr and node.attr["value"].WhichOneof("value") == "tensor":
        tensor = node.attr["value"].tensor
        dtype, shape = dtype_name(tensor.dtype), tuple(int(d.size) for d in tensor.tensor_shape.dim)
    return PaletteInfo(scope.key(node.name), scope.function, dtype, shape, reason=reason)


def _share(plans: list[tuple[Scope, Plan]], taken: dict[int, set[str]]) -> dict[str, NodeDef]:
    """Point the plans of each scope, dtype, device and control inputs at one common palette.

    Consts with control inputs (TF1 while-loop bodies give them one to place them in the loop's
    frame) share only with Consts in the same frame. A group keeps separate palettes if the
    common one would need more than ``packing.MAX_BITS`` bits.
    """
    groups: dict[tuple, list[Plan]] = {}
    scopes: dict[tuple, Scope] = {}
    for scope, plan in plans:
        if plan.group:
            continue  # a grouped tensor keeps its own palettes
        key = (id(scope), plan.dtype, tuple(plan.stripped.input), plan.stripped.device)
        groups.setdefault(key, []).append(plan)
        scopes[key] = scope
    nodes = {}
    for key, members in groups.items():
        union = members[0].palette
        for plan in members[1:]:
            union = np.union1d(union, plan.palette)
        if len(members) < 2 or packing.bits_for(union.size) > packing.MAX_BITS:
            continue
        names = taken[id(scopes[key])]
        base = f"minigraph/palette_{dtype_name(members[0].dtype)[3:].lower()}"
        name = next(f"{base}_{i}" if i else base for i in range(len(names) + 1)
                    if (f"{base}_{i}" if i else base) not in names)
        names.add(name)
        for plan in members:
            mapping = np.searchsorted(union, plan.palette).astype(packing.label_dtype(union.size))
            plan.labels = mapping[plan.labels]
            plan.palette, plan.shared = union, name
            choose_layout(plan, scopes[key])
        nodes[name] = shared_node(name, members[0])
    return nodes


def _apply(scope: Scope, todo: dict[str, Plan], shared: dict[str, NodeDef]) -> dict[str, int]:
    """Replace each planned Const of a scope by its subgraph, in place; returns bytes per tensor."""
    emitted: set[str] = set()
    sizes = {}
    i = 0
    while i < len(scope.nodes):
        plan = todo.get(scope.nodes[i].name)
        if plan is None or scope.nodes[i].op not in CONST_OPS:
            i += 1
            continue
        new = build(plan, scope)
        sizes[plan.name] = sum(node.ByteSize() for node in new)
        if plan.shared is not None and plan.shared not in emitted:
            emitted.add(plan.shared)
            new.insert(0, shared[plan.shared])
        del scope.nodes[i]
        for j, node in enumerate(new):
            scope.nodes.insert(i + j, node)
        i += len(new)
    return sizes


def palettize(graph_def: GraphDef, names: Iterable[str], *, shared: bool = False,
              values: Mapping[str, np.ndarray | packing.Coded] | None = None,
              group_size: int | Mapping[str, int | None] | None = None) -> list[PaletteInfo]:
    """Turn the named Consts into palette subgraphs, in place.

    Parameters
    ----------
    graph_def : GraphDef
        Modified in place: each palettized Const is replaced, at its position, by its decode
        subgraph (a shared palette comes just before the first tensor that reads it).
    names : iterable of str
        ``NODE`` for the main graph, ``FUNCTION/NODE`` in library functions (as
        ``graph.iter_consts`` names them). Names of tensors already palettized are accepted
        and left as they are.
    shared : bool
        One palette per scope (graph or function), dtype, device and control inputs, read by
        all its tensors (for a global codebook).
    values : mapping of str to ndarray, optional
        Values to use instead of decoding the named tensor, as ``compress.plan_compression``
        returns them (flat, in the array dtype ``codec`` reads: bfloat16 as float32), or as
        their palette and labels (``packing.Coded``: nothing is searched then). The Const
        may then hold a placeholder (``pbfile.parse_graph_lifted``); :func:`expand` gives it
        back as ``codec.set_values`` writes these values.
    group_size : int, optional
        One palette per group of this many consecutive channels of the last axis (the output
        channels of TensorFlow's HWIO convolution and [in, out] matmul kernels), stored as one
        palette Const of shape [groups, k]. Tensors of rank 0 and those whose last axis has at
        most ``group_size`` channels get one palette. Grouped tensors never share a palette.
        A mapping gives each name its own (names it lacks: one palette).

    Returns
    -------
    list of PaletteInfo
        One per distinct name, in the order given; ``reason`` says why a tensor was left as
        values (not a Const, not stored as ``tensor_content``, too many distinct values, ...).

    Raises
    ------
    GraphError
        If a name names no node.
    ClusteringError
        If ``group_size`` is not an integer >= 1.
    DecodeError
        Naming the node, for an inconsistent tensor.
    """
    per_name, one = ((group_size, None) if isinstance(group_size, Mapping)
                     else (None, group_size))
    for size in (per_name.values() if per_name is not None else [one]):
        group_of([2], size)  # checks it before any work
    scopes = list(_scopes(graph_def))
    by_key: dict[str, tuple[Scope, NodeDef]] = {}
    for scope in scopes:
        for node in scope.nodes:
            by_key.setdefault(scope.key(node.name), (scope, node))
    done, parts = _survey(graph_def)
    taken = {id(scope): {node.name for node in scope.nodes} for scope in scopes}
    counters: dict[int, list[int]] = {}  # per scope, the next minigraph/p<i> to try
    answers: dict[str, PaletteInfo | tuple[Scope, Plan]] = {}
    for name in dict.fromkeys(names):
        if name not in done and name not in by_key:
            raise GraphError(f"palettize: no node is named '{name}'")
        answers[name] = done.get(name) or _answer(*by_key[name], name in parts, taken, counters,
                                                  (values or {}).get(name),
                                                  per_name.get(name) if per_name is not None
                                                  else one)
    plans = [answer for answer in answers.values() if isinstance(answer, tuple)]
    shared_nodes = _share(plans, taken) if shared else {}
    sizes: dict[str, int] = {}
    for scope in scopes:
        todo = {plan.name: plan for owner, plan in plans if owner is scope}
        if todo:
            sizes.update({scope.key(k): v for k, v in _apply(scope, todo, shared_nodes).items()})
    return [answer if isinstance(answer, PaletteInfo)
            else _info(answer[0], answer[1], sizes[name]) for name, answer in answers.items()]


def _answer(scope: Scope, node: NodeDef, is_part: bool, taken: dict[int, set[str]],
            counters: dict[int, list[int]], values: np.ndarray | packing.Coded | None,
            group_size: int | None = None) -> PaletteInfo | tuple[Scope, Plan]:
    """One Const's plan (its inner names now taken), or why it stays in the values form."""
    if is_part:
        return _left(scope, node, "part of a palette subgraph")
    base = _base(taken[id(scope)], counters.setdefault(id(scope), [0]))
    try:
        plan = plan_const(node, scope, base, values, group_size)
    except DecodeError as exc:
        raise DecodeError(f"node '{scope.key(node.name)}': {exc}") from None
    if isinstance(plan, str):
        return _left(scope, node, plan)
    taken[id(scope)].update(inner_names(node.name, "", base).values())
    return scope, plan


def expand(graph_def: GraphDef) -> list[str]:
    """Turn every palette subgraph back into the Const it stands for, in place.

    The result is byte for byte the graph that was palettized: each Const comes back at its
    position with every field as it was, and shared palettes no other node reads are removed.

    Returns
    -------
    list of str
        Names (``NODE`` or ``FUNCTION/NODE``) of the restored Consts.
    """
    expanded: list[str] = []
    for scope in _scopes(graph_def):
        found = detect(scope)
        if not found:
            continue
        restored = {item.plan.name: restore(item.plan) for item in found}
        drop = {name for item in found for name in item.own[:-1]}
        shared = {item.plan.shared for item in found if item.plan.shared is not None}
        still_read = {source(edge) for node in scope.nodes
                      if node.name not in drop and node.name not in restored
                      and node.name not in shared for edge in node.input}
        drop.update(shared - still_read)
        for node in scope.nodes:
            if node.name in restored:
                node.CopyFrom(restored[node.name])
        for i in reversed(range(len(scope.nodes))):
            if scope.nodes[i].name in drop:
                del scope.nodes[i]
        expanded.extend(scope.key(item.plan.name) for item in found)
    return expanded
