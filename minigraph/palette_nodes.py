"""Palette subgraphs as NodeDefs: build one, restore the Const (recognising them: palette_detect).

Layouts (``Plan.packed``):

- uint8 indices (palettes of up to 256 entries): a uint8 Const shaped like the tensor, ``Cast``
  to int32 and ``GatherV2`` from the palette, named ``NAME``. GatherV2 takes int32 and int64
  indices only (tensorflow/core/ops/array_ops.cc in TF 1.15; int16 came later), which is also
  why palettes of 257 to 65,536 entries are packed rather than stored as int16.
- packed: b-bit indices packed ``64 // b`` to an int64 word (``packing.pack_indices``). Element
  i's bits start at bit ``i * b`` of the stream: ``Range(0, n * b, b)`` gives those positions,
  ``FloorDiv``/``FloorMod`` by the bits per word ``p * b`` split them into word number and offset,
  ``GatherV2`` picks each element's word, ``RightShift`` by the offset and ``BitwiseAnd`` with
  ``2^b - 1`` give its index, ``GatherV2`` its value and ``Reshape`` (named ``NAME``) the shape.
  Every op but Range yields at most twice the bits it reads: the TFLite converter's constant
  folding refuses ops that grow their input more (tensorflow/compiler/mlir/tensorflow/
  transforms/constant_fold.cc), and TFLite has no builtin op for int64 RightShift or for any
  BitwiseAnd, so a decode that broadcasts words against shift amounts (or bit planes against
  bit positions) fails to convert; this one folds back to the dense tensor.
- grouped (``Plan.group`` G > 0, either index layout): the palette Const has shape [groups, k],
  one row per G consecutive channels of the last axis, and is ``Reshape``d flat. Indices of the
  tensor's shape (uint8 ones ``Cast`` to int64; packed ones ``Reshape``d) get ``k * (c // G)``
  added for channel c: ``Range(0, C, 1)``, ``FloorDiv`` by G and ``Mul`` by k over the C channels,
  broadcast by ``Add`` along the last axis; ``GatherV2`` (named ``NAME``) reads the flat palette.
  The offsets are computed over C elements, not n, and the broadcasting Add outputs no more
  than its larger input; the TFLite converter folds the whole decode back to the dense tensor
  (tests/test_groups_tf.py; by hand also for a 2048 x 1536 kernel).

Every op used is registered in TensorFlow 1.15 and 2.x; default-valued attrs (GatherV2's
``batch_dims``, Cast's ``Truncate``) are left out, as TF 1.x graphs have them not, and importers
fill them in. The last node carries the attr ``MARKER``: a version tag, the prefix of the inner
node names, and the original NodeDef without its name and tensor payload. TensorFlow does not
check attrs whose name starts with ``_`` against the op (tensorflow/core/framework/node_def_util.cc).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import codec, packing
from .errors import ClusteringError
from .schema import DataType, NodeDef

__all__ = ["MARKER", "TAGS", "Scope", "Plan", "build", "shared_node", "restore", "group_of",
           "grouping_bytes", "inner_names", "source", "channel_count"]

MARKER = "_minigraph_palette"
TAG_V1 = b"minigraph palette 1"  # inner nodes NAME/<tag><suffix>: read, no longer written
TAG_V2 = b"minigraph palette 2"  # inner nodes <base>/<tag>, base short (minigraph/p0, ...)
_SHARED = b"shared"
INT32, INT64, UINT8 = (DataType.Value(name) for name in ("DT_INT32", "DT_INT64", "DT_UINT8"))
TAGS = ("palette", "indices", "words", "zero", "limit", "step", "span", "mask", "shape", "cast",
        "positions", "word", "offset", "picked", "shifted", "index", "values",
        "flat", "flatten", "channels", "one", "group", "width", "lane", "band", "base",
        "lattice", "grouped")


@dataclass
class Scope:
    """The node list of the graph (``function`` None) or of one library function."""

    function: str | None
    nodes: Any  # the repeated NodeDef field

    def key(self, node_name: str) -> str:
        """The name ``graph.iter_consts`` gives a node here: ``NODE`` or ``FUNCTION/NODE``."""
        return node_name if self.function is None else f"{self.function}/{node_name}"

    def ref(self, node_name: str, output_arg: str) -> str:
        """How a node's first output is named as an input here."""
        # Function bodies name outputs "node:output_arg:index" (tensorflow/core/framework/
        # function.proto); a graph names output 0 by the node name alone.
        return node_name if self.function is None else f"{node_name}:{output_arg}:0"


def source(edge: str) -> str:
    """The node an input edge (``x``, ``x:1``, ``^x``, ``x:output:0``) comes from."""
    return edge.lstrip("^").split(":", 1)[0]


@dataclass
class Plan:
    """Everything one tensor's subgraph is built from."""

    name: str  # the Const's node name, which the last decode node takes
    stripped: NodeDef  # the Const without name and tensor_content
    palette: np.ndarray  # distinct bit patterns, sorted (the shared palette's, if shared) or
    # in the codebook's order (packing.Coded)
    labels: np.ndarray  # unsigned integers, one per element
    suffix: str  # inner nodes are NAME/<tag><suffix> (version 1) ...
    packed: bool = True  # b-bit indices in int64 words; False for one uint8 per index
    shared: str | None = None  # name of the shared palette Const
    group: int = 0  # channels per group (palette of shape [groups, k]); 0: one 1-D palette
    base: str | None = None  # ... or <base>/<tag> (version 2, what build writes)

    @property
    def k(self) -> int:
        """Entries per palette (per group's palette, for a grouped plan)."""
        return int(self.palette.shape[-1])

    @property
    def groups(self) -> int:
        """How many palettes the tensor has."""
        return int(self.palette.shape[0]) if self.group else 1

    @property
    def dtype(self) -> int:
        """The tensor's DataType."""
        return self.stripped.attr["value"].tensor.dtype

    @property
    def bits(self) -> int:
        """Bits stored per index."""
        return packing.bits_for(self.k) if self.packed else 8

    def patterns(self) -> np.ndarray:
        """The bit pattern of every element, flat (each element looked up in its group's palette)."""
        if not self.group:
            return self.palette[self.labels]
        channels = channel_count(self.stripped)
        band = (np.arange(self.labels.size, dtype=np.int64) % channels) // self.group
        return self.palette[band, self.labels]


def group_of(shape: Sequence[int], group_size: int | None) -> int:
    """Channels per palette for a tensor of this shape, 0 for one palette: grouping needs
    elements, and a last axis of more than ``group_size`` channels (so at least 2 groups).

    Raises ClusteringError if ``group_size`` is neither None nor an integer >= 1.
    """
    if group_size is not None and (isinstance(group_size, bool) or group_size < 1
                                   or not isinstance(group_size, (int, np.integer))):
        raise ClusteringError(f"palettize: group_size must be an integer >= 1, got {group_size!r}")
    if not group_size or not shape or shape[-1] <= group_size or 0 in shape:
        return 0
    return int(group_size)


def inner_names(name: str, suffix: str, base: str | None) -> dict[str, str]:
    """Each tag's node name: ``<base>/<tag>``, or (version 1) ``NAME/<tag><suffix>``."""
    if base is not None:
        return {tag: f"{base}/{tag}" for tag in TAGS}
    return {tag: f"{name}/{tag}{suffix}" for tag in TAGS}


def channel_count(stripped: NodeDef) -> int:
    """The size of a Const's last axis (its output channels in TensorFlow's layouts)."""
    return int(stripped.attr["value"].tensor.tensor_shape.dim[-1].size)


def _const(name: str, values: Any, dtype: int, control: Sequence[str], device: str) -> NodeDef:
    node = NodeDef(name=name, op="Const", input=control, device=device)
    node.attr["dtype"].type = dtype
    node.attr["value"].tensor.CopyFrom(codec.from_array(np.asarray(values), dtype))
    return node


class _Builder:
    """Appends the nodes of one subgraph; every new Const carries the original's control inputs
    (Consts inside TF1 while loops have one placing them in the loop's frame; ops follow their
    inputs) and every node its device."""

    def __init__(self, plan: Plan, scope: Scope) -> None:
        self.plan, self.scope = plan, scope
        self.names = inner_names(plan.name, plan.suffix, plan.base)
        self.control, self.device = list(plan.stripped.input), plan.stripped.device
        self.nodes: list[NodeDef] = []

    def const(self, tag: str, values: Any, dtype: int) -> str:
        self.nodes.append(_const(self.names[tag], values, dtype, self.control, self.device))
        return self.scope.ref(self.names[tag], "output")

    def op(self, tag: str | None, op: str, inputs: Sequence[str], output_arg: str,
           **types: int) -> str:
        """An op node named for ``tag``, or ``NAME`` itself for ``tag`` None."""
        name = self.plan.name if tag is None else self.names[tag]
        node = NodeDef(name=name, op=op, input=inputs, device=self.device)
        for key, value in types.items():
            node.attr[key].type = value
        self.nodes.append(node)
        return self.scope.ref(name, output_arg)


def _offset(b: _Builder, index: str, zero: str) -> str:
    """Indices of the tensor's shape into the flattened [groups, k] palette: each label plus
    ``k`` times its group, the group of channel c being c // G, broadcast along the last axis."""
    channels = b.const("channels", np.int64(channel_count(b.plan.stripped)), INT64)
    one = b.const("one", np.int64(1), INT64)
    group = b.const("group", np.int64(b.plan.group), INT64)
    width = b.const("width", np.int64(b.plan.k), INT64)
    lane = b.op("lane", "Range", [zero, channels, one], "output", Tidx=INT64)
    band = b.op("band", "FloorDiv", [lane, group], "z", T=INT64)
    base = b.op("base", "Mul", [band, width], "z", T=INT64)
    return b.op("grouped", "Add", [index, base], "z", T=INT64)


def _decode_uint8(b: _Builder, palette: str, zero: str, dtype: int, shape: list[int]) -> None:
    indices = b.const("indices", b.plan.labels.astype(np.uint8).reshape(shape), UINT8)
    # Grouped indices get int64 offsets added, so they are cast to int64 at once.
    kind = INT64 if b.plan.group else INT32
    index = b.op("cast", "Cast", [indices], "y", SrcT=UINT8, DstT=kind)
    if b.plan.group:
        index = _offset(b, index, zero)
    b.op(None, "GatherV2", [palette, index, zero], "output", Tparams=dtype, Tindices=kind,
         Taxis=INT64)


def _decode_packed(b: _Builder, palette: str, zero: str, dtype: int, shape: list[int]) -> None:
    bits, n = b.plan.bits, b.plan.labels.size
    words = b.const("words", packing.pack_indices(b.plan.labels, bits), INT64)
    limit = b.const("limit", np.int64(n * bits), INT64)
    step = b.const("step", np.int64(bits), INT64)
    span = b.const("span", np.int64(packing.per_word(bits) * bits), INT64)
    mask = b.const("mask", np.int64((1 << bits) - 1), INT64)
    positions = b.op("positions", "Range", [zero, limit, step], "output", Tidx=INT64)
    word = b.op("word", "FloorDiv", [positions, span], "z", T=INT64)
    offset = b.op("offset", "FloorMod", [positions, span], "z", T=INT64)
    picked = b.op("picked", "GatherV2", [words, word, zero], "output", Tparams=INT64,
                  Tindices=INT64, Taxis=INT64)
    # RightShift is arithmetic on int64 (a word with its top bit set is negative); the mask
    # keeps only the b bits of the field, so this equals a logical shift.
    shifted = b.op("shifted", "RightShift", [picked, offset], "z", T=INT64)
    index = b.op("index", "BitwiseAnd", [shifted, mask], "z", T=INT64)
    shape_ref = b.const("shape", np.array(shape, np.int32), INT32)
    if b.plan.group:  # shaped first, so the offsets broadcast along the last axis
        lattice = b.op("lattice", "Reshape", [index, shape_ref], "output", T=INT64,
                       Tshape=INT32)
        b.op(None, "GatherV2", [palette, _offset(b, lattice, zero), zero], "output",
             Tparams=dtype, Tindices=INT64, Taxis=INT64)
        return
    values = b.op("values", "GatherV2", [palette, index, zero], "output", Tparams=dtype,
                  Tindices=INT64, Taxis=INT64)
    b.op(None, "Reshape", [values, shape_ref], "output", T=dtype, Tshape=INT32)


def grouping_bytes(shape: Sequence[int], group: int, k: int, dtype: int) -> int:
    """Bytes the nodes that only a grouped palette needs take (the palette's flattening and
    the per-channel offsets), for a Const of this shape in the main graph (inner names as
    the tenth to hundredth palette's, ``minigraph/p10/<tag>``)."""
    base = "minigraph/p10"
    stripped = NodeDef(op="Const")
    stripped.attr["value"].tensor.dtype = dtype
    stripped.attr["value"].tensor.tensor_shape.dim.add().size = int(shape[-1])
    groups = -(-int(shape[-1]) // group)
    plan = Plan("w", stripped, np.zeros((groups, k), np.uint32), np.zeros(0, np.uint8), "",
                group=group, base=base)
    b = _Builder(plan, Scope(None, []))
    flat = b.const("flat", np.array([-1], np.int32), INT32)
    b.op("flatten", "Reshape", [f"{base}/palette", flat], "output", T=dtype, Tshape=INT32)
    _offset(b, f"{base}/cast", f"{base}/zero")
    return sum(node.ByteSize() for node in b.nodes)


def build(plan: Plan, scope: Scope) -> list[NodeDef]:
    """The decode subgraph of one tensor, in node order, its last node named ``plan.name``."""
    tensor = plan.stripped.attr["value"].tensor
    dtype, shape = tensor.dtype, [int(d.size) for d in tensor.tensor_shape.dim]
    b = _Builder(plan, scope)
    palette = (scope.ref(plan.shared, "output") if plan.shared is not None
               else b.const("palette", packing.from_patterns(plan.palette, dtype), dtype))
    zero = b.const("zero", np.int64(0), INT64)  # Range's start and both GatherV2 axes
    if plan.group:  # GatherV2 in TF 1.15 has no batch_dims: gather from the palettes end to end
        flat = b.const("flat", np.array([-1], np.int32), INT32)
        palette = b.op("flatten", "Reshape", [palette, flat], "output", T=dtype, Tshape=INT32)
    (_decode_packed if plan.packed else _decode_uint8)(b, palette, zero, dtype, shape)
    naming = [TAG_V2, plan.base.encode()] if plan.base is not None else [TAG_V1, plan.suffix.encode()]
    b.nodes[-1].attr[MARKER].list.s.extend(
        naming + [plan.stripped.SerializeToString(deterministic=True)])
    return b.nodes


def shared_node(name: str, plan: Plan) -> NodeDef:
    """The palette Const that several tensors read (``plan`` is one of them)."""
    node = _const(name, packing.from_patterns(plan.palette, plan.dtype), plan.dtype,
                  list(plan.stripped.input), plan.stripped.device)
    node.attr[MARKER].list.s.extend([TAG_V1, _SHARED])
    return node


def restore(plan: Plan) -> NodeDef:
    """The Const the subgraph stands for, as it was."""
    node = NodeDef()
    node.CopyFrom(plan.stripped)
    node.name = plan.name
    values = packing.from_patterns(plan.patterns(), plan.dtype)
    codec.set_values(node.attr["value"].tensor, values)
    return node
