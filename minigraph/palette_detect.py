"""Recognising palette subgraphs in a node list: read a marked node's plan back from its own
Consts, rebuild it, and accept it only if the rebuild is exactly what is there (so a user's own
Gather subgraph, or a tampered palette, is never taken for one). Both versions of the inner
node names are read (see ``palette_nodes``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from google.protobuf.message import DecodeError as ProtobufDecodeError

from . import codec, packing
from .graph import CONST_OPS
from .palette_nodes import (INT64, MARKER, TAG_V1, TAG_V2, UINT8, Plan, Scope, build, channel_count,
                            inner_names, shared_node, source)
from .schema import NodeDef

__all__ = ["Found", "read_plan", "detect"]


def _storable(stripped: NodeDef) -> bool:
    """Whether a NodeDef is one this module would store: a Const of a palettizable dtype."""
    return (stripped.op in CONST_OPS and "value" in stripped.attr
            and stripped.attr["value"].WhichOneof("value") == "tensor"
            and packing.palette_supported(stripped.attr["value"].tensor.dtype))


def _array(node: NodeDef | None, dtype: int) -> np.ndarray | None:
    """A Const node's values, or None if it is no Const of that dtype."""
    if node is None or node.op != "Const" or "value" not in node.attr:
        return None
    tensor = node.attr["value"].tensor
    return codec.to_array(tensor) if tensor.dtype == dtype else None


def _labels(names: dict[str, str], by_name: dict[str, NodeDef], n: int,
            packed: bool) -> np.ndarray | None:
    """The indices a subgraph stores (uint8 ones, or packed in words)."""
    if not packed:
        indices = _array(by_name.get(names["indices"]), UINT8)
        return None if indices is None or indices.size != n else indices.reshape(-1)
    mask = _array(by_name.get(names["mask"]), INT64)
    words = _array(by_name.get(names["words"]), INT64)
    if mask is None or words is None or mask.ndim != 0 or words.ndim != 1:
        return None
    bits = int(mask).bit_length()
    if not 1 <= bits <= packing.MAX_BITS or words.size * packing.per_word(bits) < n:
        return None
    return packing.unpack_indices(words, bits, n)


def _grouping(gather: NodeDef, names: dict[str, str], by_name: dict[str, NodeDef]
              ) -> tuple[str, int, bool] | None:
    """For a grouped subgraph's last node: its palette's name, the group size and whether the
    indices are packed; None if the node does not read a flattened palette."""
    flatten, grouped = by_name.get(names["flatten"]), by_name.get(names["grouped"])
    group = _array(by_name.get(names["group"]), INT64)
    if (flatten is None or grouped is None or group is None or group.ndim != 0
            or int(group) < 1 or not flatten.input or not grouped.input):
        return None
    return source(flatten.input[0]), int(group), source(grouped.input[0]) == names["lattice"]


def read_plan(node: NodeDef, scope: Scope, by_name: dict[str, NodeDef]) -> Plan | None:
    """What a marked node's subgraph would have been built from, read from its own Consts.

    None when the node is not the last node of something this module builds; the caller still
    has to rebuild the plan and compare, which is what proves the subgraph is a palette.
    """
    marker = node.attr[MARKER].list.s
    if len(marker) != 3 or marker[0] not in (TAG_V1, TAG_V2):
        return None
    stripped = NodeDef.FromString(marker[2])
    suffix, base = ("", marker[1].decode()) if marker[0] == TAG_V2 else (marker[1].decode(), None)
    if not _storable(stripped):
        return None
    dtype = stripped.attr["value"].tensor.dtype
    names = inner_names(node.name, suffix, base)
    gather = node if node.op == "GatherV2" else by_name.get(names["values"])
    if gather is None or not gather.input:
        return None
    palette_name, group, packed = source(gather.input[0]), 0, node.op != "GatherV2"
    if palette_name == names["flatten"]:
        grouping = _grouping(node, names, by_name)
        if grouping is None:
            return None
        palette_name, group, packed = grouping
    palette = _array(by_name.get(palette_name), dtype)
    if palette is None or palette.ndim != (2 if group else 1) or palette.size == 0:
        return None
    if group and (len(stripped.attr["value"].tensor.tensor_shape.dim) == 0
                  or palette.shape[0] != -(-channel_count(stripped) // group)):
        return None  # one palette row per group of channels, or it is not ours
    n = int(np.prod([d.size for d in stripped.attr["value"].tensor.tensor_shape.dim]))
    labels = _labels(names, by_name, n, packed)
    if labels is None or (labels.size and int(labels.max()) >= palette.shape[-1]):
        return None
    shared = None if palette_name == names["palette"] else palette_name
    return Plan(node.name, stripped, packing.to_patterns(palette, dtype).reshape(palette.shape),
                labels.astype(packing.label_dtype(palette.shape[-1])), suffix, packed, shared,
                group, base)


@dataclass
class Found:
    """A palette subgraph proven to be one: its plan, its own nodes, their serialized size."""

    plan: Plan
    own: list[str]  # the tensor's own nodes, the last one named plan.name
    stored_bytes: int


def _same(a: NodeDef | None, b: NodeDef) -> bool:
    return a is not None and (a.SerializeToString(deterministic=True)
                              == b.SerializeToString(deterministic=True))


def detect(scope: Scope) -> list[Found]:
    """Every palette subgraph of one scope that rebuilds to exactly what is there."""
    by_name = {node.name: node for node in scope.nodes}
    readers: dict[str, set[str]] = {}
    for node in scope.nodes:
        for edge in node.input:
            readers.setdefault(source(edge), set()).add(node.name)
    found = []
    for node in scope.nodes:
        if MARKER not in node.attr or node.attr[MARKER].WhichOneof("value") != "list":
            continue
        try:
            plan = read_plan(node, scope, by_name)
            rebuilt = build(plan, scope) if plan is not None else []
        except (ValueError, ProtobufDecodeError):  # DecodeError and UnicodeDecodeError too
            continue  # a marker or a Const that is not ours
        if plan is None or not all(_same(by_name.get(r.name), r) for r in rebuilt):
            continue
        own = [r.name for r in rebuilt]
        if any(readers.get(name, set()) - set(own) for name in own[:-1]):
            continue  # another node reads an inner node: expanding would break it
        if plan.shared is not None and not _same(by_name.get(plan.shared),
                                                 shared_node(plan.shared, plan)):
            continue
        found.append(Found(plan, own, sum(r.ByteSize() for r in rebuilt)))
    return found
