"""Planning one Const's palette form: whether it can have one, its palette and labels (found
in its values, or given by the clustering), and the index layout taking fewer bytes."""

from __future__ import annotations

import numpy as np

from . import codec, packing
from .dtypes import dtype_name, lookup
from .errors import DecodeError
from .graph import CONST_OPS
from .palette_nodes import Plan, Scope, build, group_of
from .schema import NodeDef, TensorProto

__all__ = ["plan_const", "choose_layout"]

_SEARCH_LIMIT = 1 << 16  # tensors up to this many elements try both layouts, keep the smaller


def _refusal(node: NodeDef, given: bool) -> str | None:
    """Why a node cannot be palettized (before looking at its values), or None; with values
    ``given``, its tensor may hold a placeholder and is not checked."""
    if node.op not in CONST_OPS:
        return f"not a Const (op {node.op})"
    if "value" not in node.attr or node.attr["value"].WhichOneof("value") != "tensor":
        return "no tensor in attr 'value'"
    if any(not edge.startswith("^") for edge in node.input):
        return "has data inputs"
    dtype = node.attr["value"].tensor.dtype
    if not packing.palette_supported(dtype):
        return f"dtype {dtype_name(dtype)} has no fixed-size bit pattern of at most 8 bytes"
    if given:
        return None
    info = codec.describe(node.attr["value"].tensor)
    if info.encoding != "content":
        return f"values stored as {info.encoding}, not tensor_content"
    return None


def choose_layout(plan: Plan, scope: Scope) -> None:
    """Set the layout taking fewer bytes: uint8 indices need fewer nodes, packed ones fewer bits.

    Small tensors are built both ways and measured; for large ones the index bytes decide.
    """
    bits, n = packing.bits_for(plan.k), plan.labels.size
    if bits >= 8:  # at 8 bits words hold what uint8 holds, with more nodes
        plan.packed = bits > 8
        return
    if n > _SEARCH_LIMIT:
        plan.packed = 8 * -(-n // packing.per_word(bits)) < n
        return
    sizes = []
    for packed in (False, True):
        plan.packed = packed
        sizes.append(sum(node.ByteSize() for node in build(plan, scope)))
    plan.packed = sizes[1] < sizes[0]


def plan_const(node: NodeDef, scope: Scope, base: str, values: np.ndarray | packing.Coded | None,
          group_size: int | None = None) -> Plan | str:
    """A plan for one Const, or the reason it stays in the values form."""
    given = values is not None
    reason = _refusal(node, given)
    if reason is not None:
        return reason
    tensor = node.attr["value"].tensor
    group = group_of([int(d.size) for d in tensor.tensor_shape.dim], group_size)
    if isinstance(values, packing.Coded) and group:
        values = values.values()  # one palette per group: found from the values
    if values is None:
        values = codec.to_array(tensor)
    else:
        _check_given(values, tensor)
    content_bytes = 0
    labels: np.ndarray | None
    if isinstance(values, packing.Coded):  # the clustering's own palette and labels
        palette, labels = values.palette, values.labels
    else:
        patterns = packing.to_patterns(values, tensor.dtype)
        content_bytes = patterns.nbytes
        if group:
            channels = int(tensor.tensor_shape.dim[-1].size)
            palette, labels = packing.group_palettes(patterns, channels, group,
                                                     1 << packing.MAX_BITS)
        else:
            palette, labels = packing.palette_of(patterns, 1 << packing.MAX_BITS)
    if labels is None:
        return (f"more than {1 << packing.MAX_BITS} distinct values{' in a group' if group else ''}"
                f": indices would need more than {packing.MAX_BITS} bits")
    stripped = NodeDef()
    stripped.CopyFrom(node)
    stripped.ClearField("name")
    codec.set_placeholder(stripped.attr["value"].tensor, b"")
    # Given values are written with codec.set_values, as expand writes them: nothing to check.
    if not given and not _content_only(node, stripped, content_bytes):
        return "its tensor also holds a typed value list, which expand could not restore"
    plan = Plan(node.name, stripped, palette, labels, "", group=group, base=base)
    choose_layout(plan, scope)
    return plan


def _check_given(values: np.ndarray | packing.Coded, tensor: TensorProto) -> None:
    """Given values must be what ``codec.to_array`` would return for the tensor."""
    shape = [int(d.size) for d in tensor.tensor_shape.dim]
    if isinstance(values, packing.Coded):
        if values.labels.size != int(np.prod(shape)) or values.dtype != tensor.dtype:
            raise DecodeError(f"{values.labels.size} labels of {dtype_name(values.dtype)} given "
                              f"for a {dtype_name(tensor.dtype)} tensor of shape {shape}")
        return
    array_dtype = lookup(tensor.dtype).array
    if values.size != int(np.prod(shape)) or values.dtype != array_dtype:
        raise DecodeError(f"{values.size} values of {values.dtype} given for a "
                          f"{dtype_name(tensor.dtype)} tensor of shape {shape} "
                          f"(expected {array_dtype})")


def _content_only(node: NodeDef, stripped: NodeDef, nbytes: int) -> bool:
    """Whether the Const differs from ``stripped`` by its ``tensor_content`` alone.

    ``expand`` writes the values back as ``tensor_content`` (the same bytes: they are the same
    bit patterns), so this is what makes it exact. Anything else ``set_placeholder`` cleared (a
    typed value list next to the content, which TensorFlow ignores) shows in the serialized size:
    the content field is one tag byte, its length as a varint, and the bytes.
    """
    field = 1 + max(1, -(-nbytes.bit_length() // 7)) + nbytes
    return (node.attr["value"].tensor.ByteSize()
            == stripped.attr["value"].tensor.ByteSize() + field)
