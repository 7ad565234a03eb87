"""The palette form: a Const rebuilt in the graph from a small palette and packed indices.

A Const ``NAME`` holding few distinct values becomes Consts of its palette (the distinct bit
patterns, in its own dtype) and of its indices, plus decode ops of core TensorFlow, the last of
which is named ``NAME`` and yields exactly the Const's tensor:

- b = 8 bits (129 to 256 entries): uint8 indices shaped like the tensor, ``Cast`` to int32 and
  ``GatherV2`` from the palette (GatherV2 takes int32/int64 indices only).
- any other b up to 16: indices packed ``64 // b`` to an int64 word (see ``packing``);
  ``RightShift`` of the words ``[w, 1]`` by ``[0, b, 2b, ...]`` and ``BitwiseAnd`` with ``2^b - 1``
  give the indices ``[w, p]``, ``GatherV2`` the values, then ``Reshape``/``Slice`` drop the padding
  and a final ``Reshape`` restores the shape. int64 indices need no ``Cast``.

The last node carries the attr ``_minigraph_palette`` (TensorFlow skips validation of attrs whose
name starts with ``_``: tensorflow/core/framework/node_def_util.cc) holding the original NodeDef
without its name and payload, so :func:`expand` restores it byte for byte. A subgraph counts as a
palette only if rebuilding it from its own palette and indices gives the same nodes, and no node
outside it reads its inner nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from google.protobuf.message import DecodeError as ProtobufDecodeError

from . import codec, packing
from .dtypes import dtype_name
from .errors import DecodeError, GraphError
from .graph import CONST_OPS
from .schema import DataType, GraphDef, NodeDef

__all__ = ["MARKER", "PaletteInfo", "palettize", "expand", "find_palettes", "palette_parts"]

MARKER = "_minigraph_palette"
_TAG = b"minigraph palette 1"
_SHARED = b"shared"
_INT32, _INT64, _UINT8 = (DataType.Value(name) for name in ("DT_INT32", "DT_INT64", "DT_UINT8"))
_TAGS = ("palette", "indices", "words", "shifts", "mask", "axis", "flat", "begin", "size", "shape",
         "cast", "shift", "and", "gather", "flatten", "slice")


@dataclass(frozen=True)
class PaletteInfo:
    """One tensor's palette form, or why it was left as values (``reason``).

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

    @property
    def palettized(self) -> bool:
        """True when the tensor is in the palette form."""
        return self.reason is None


@dataclass
class _Scope:
    function: str | None
    nodes: Any  # the repeated NodeDef field of the graph or of one library function

    def key(self, node_name: str) -> str:
        return node_name if self.function is None else f"{self.function}/{node_name}"

    def ref(self, node_name: str, output_arg: str) -> str:
        # Function bodies name a node's output "node:output_arg:index" (tensorflow/core/framework/
        # function.proto); the graph names output 0 by the node name alone.
        return node_name if self.function is None else f"{node_name}:{output_arg}:0"


def _scopes(graph_def: GraphDef) -> Iterator[_Scope]:
    yield _Scope(None, graph_def.node)
    for function in graph_def.library.function:
        yield _Scope(function.signature.name, function.node_def)


def _source(edge: str) -> str:
    return edge.lstrip("^").split(":", 1)[0]


@dataclass
class _Plan:
    name: str  # the Const's node name, which the last decode node takes
    stripped: NodeDef  # the Const without name and tensor_content
    palette: np.ndarray  # sorted bit patterns (the shared palette's, if shared)
    labels: np.ndarray  # int64, one per element
    suffix: str  # inner nodes are NAME/<tag><suffix>
    shared: str | None = None  # name of the shared palette Const

    @property
    def dtype(self) -> int:
        return self.stripped.attr["value"].tensor.dtype

    @property
    def bits(self) -> int:
        return packing.bits_for(self.palette.size)


def _const(name: str, values: Any, dtype: int, control: Sequence[str], device: str) -> NodeDef:
    node = NodeDef(name=name, op="Const", input=control, device=device)
    node.attr["dtype"].type = dtype
    node.attr["value"].tensor.CopyFrom(codec.from_array(np.asarray(values), dtype))
    return node


def _op(name: str, op: str, inputs: Sequence[str], device: str, **types: int) -> NodeDef:
    node = NodeDef(name=name, op=op, input=inputs, device=device)
    for key, value in types.items():
        node.attr[key].type = value
    return node


def _build(plan: _Plan, scope: _Scope) -> list[NodeDef]:
    """The decode subgraph of one tensor, its last node named ``plan.name`` (nodes in order)."""
    tensor = plan.stripped.attr["value"].tensor
    dtype, shape = tensor.dtype, [int(d.size) for d in tensor.tensor_shape.dim]
    names = {tag: f"{plan.name}/{tag}{plan.suffix}" for tag in _TAGS}
    control, device = list(plan.stripped.input), plan.stripped.device
    nodes: list[NodeDef] = []

    def const(tag: str, values: Any, const_dtype: int) -> str:
        nodes.append(_const(names[tag], values, const_dtype, control, device))
        return scope.ref(names[tag], "output")

    def op(name: str, op_name: str, inputs: Sequence[str], output_arg: str, **types: int) -> str:
        nodes.append(_op(name, op_name, inputs, device, **types))
        return scope.ref(name, output_arg)

    palette = (scope.ref(plan.shared, "output") if plan.shared is not None
               else const("palette", packing.from_patterns(plan.palette, dtype), dtype))
    axis = const("axis", np.int32(0), _INT32)
    bits, n = plan.bits, plan.labels.size
    if bits == 8:
        indices = const("indices", plan.labels.astype(np.uint8).reshape(shape), _UINT8)
        cast = op(names["cast"], "Cast", [indices], "y", SrcT=_UINT8, DstT=_INT32)
        op(plan.name, "GatherV2", [palette, cast, axis], "output", Tparams=dtype,
           Tindices=_INT32, Taxis=_INT32)
    else:
        p = packing.per_word(bits)
        words = packing.pack_indices(plan.labels, bits)
        words_ref = const("words", words.reshape(-1, 1), _INT64)
        shifts = const("shifts", np.arange(p, dtype=np.int64) * bits, _INT64)
        mask = const("mask", np.int64((1 << bits) - 1), _INT64)
        # RightShift is arithmetic on int64 (a word with its top bit set is negative); the mask
        # keeps only the b bits of each field, so the result is the same as a logical shift.
        shifted = op(names["shift"], "RightShift", [words_ref, shifts], "z", T=_INT64)
        index = op(names["and"], "BitwiseAnd", [shifted, mask], "z", T=_INT64)
        values = op(names["gather"], "GatherV2", [palette, index, axis], "output", Tparams=dtype,
                    Tindices=_INT64, Taxis=_INT32)
        if words.size * p != n:
            flat = const("flat", np.array([-1], np.int32), _INT32)
            begin = const("begin", np.array([0], np.int32), _INT32)
            size = const("size", np.array([n], np.int32), _INT32)
            values = op(names["flatten"], "Reshape", [values, flat], "output", T=dtype,
                        Tshape=_INT32)
            values = op(names["slice"], "Slice", [values, begin, size], "output", T=dtype,
                        Index=_INT32)
        shape_ref = const("shape", np.array(shape, np.int32), _INT32)
        op(plan.name, "Reshape", [values, shape_ref], "output", T=dtype, Tshape=_INT32)
    nodes[-1].attr[MARKER].list.s.extend(
        [_TAG, plan.suffix.encode(), plan.stripped.SerializeToString(deterministic=True)])
    return nodes


def _shared_node(name: str, plan: _Plan) -> NodeDef:
    """The palette Const that several tensors' GatherV2 nodes read (``plan`` is one of them)."""
    node = _const(name, packing.from_patterns(plan.palette, plan.dtype), plan.dtype,
                  list(plan.stripped.input), plan.stripped.device)
    node.attr[MARKER].list.s.extend([_TAG, _SHARED])
    return node


def _restore(plan: _Plan) -> NodeDef:
    """The Const the subgraph stands for, as it was."""
    node = NodeDef()
    node.CopyFrom(plan.stripped)
    node.name = plan.name
    values = packing.from_patterns(plan.palette[plan.labels], plan.dtype)
    codec.set_values(node.attr["value"].tensor, values)
    return node


def _refusal(node: NodeDef) -> str | None:
    """Why a node cannot be palettized (before looking at its values), or None."""
    if node.op not in CONST_OPS:
        return f"not a Const (op {node.op})"
    if "value" not in node.attr or node.attr["value"].WhichOneof("value") != "tensor":
        return "no tensor in attr 'value'"
    if any(not edge.startswith("^") for edge in node.input):
        return "has data inputs"
    dtype = node.attr["value"].tensor.dtype
    if not packing.palette_supported(dtype):
        return f"dtype {dtype_name(dtype)} has no fixed-size bit pattern of at most 8 bytes"
    info = codec.describe(node.attr["value"].tensor)
    if info.encoding != "content":
        return f"values stored as {info.encoding}, not tensor_content"
    return None


def _plan(node: NodeDef, suffix: str) -> _Plan | str:
    """A plan for one Const, or the reason it stays in the values form."""
    reason = _refusal(node)
    if reason is not None:
        return reason
    dtype = node.attr["value"].tensor.dtype
    patterns = packing.to_patterns(codec.to_array(node.attr["value"].tensor), dtype)
    palette, labels = packing.palette_of(patterns, 1 << packing.MAX_BITS)
    if labels is None:
        return (f"more than {1 << packing.MAX_BITS} distinct values: indices would need more "
                f"than {packing.MAX_BITS} bits")
    stripped = NodeDef()
    stripped.CopyFrom(node)
    stripped.ClearField("name")
    codec.set_placeholder(stripped.attr["value"].tensor, b"")
    plan = _Plan(node.name, stripped, palette, labels, suffix)
    if (_restore(plan).SerializeToString(deterministic=True)
            != node.SerializeToString(deterministic=True)):
        return "its tensor also holds a typed value list, which expand could not restore"
    return plan


def _suffix(name: str, taken: set[str]) -> str:
    """The first suffix for which no inner node name is taken."""
    number = 0
    while True:
        suffix = f"_{number}" if number else ""
        if all(f"{name}/{tag}{suffix}" not in taken for tag in _TAGS):
            return suffix
        number += 1


def _info(scope: _Scope, plan: _Plan, stored_bytes: int) -> PaletteInfo:
    tensor = plan.stripped.attr["value"].tensor
    return PaletteInfo(scope.key(plan.name), scope.function, dtype_name(tensor.dtype),
                       tuple(int(d.size) for d in tensor.tensor_shape.dim), plan.palette.size,
                       plan.bits, stored_bytes, plan.shared)


@dataclass
class _Found:
    plan: _Plan
    own: list[str]  # the tensor's own nodes, the last one named plan.name
    stored_bytes: int


def _const_array(node: NodeDef | None, dtype: int | None = None) -> np.ndarray | None:
    """A Const node's values, or None if it is no Const (of that dtype)."""
    if node is None or node.op != "Const" or "value" not in node.attr:
        return None
    tensor = node.attr["value"].tensor
    if dtype is not None and tensor.dtype != dtype:
        return None
    return codec.to_array(tensor)


def _read(node: NodeDef, scope: _Scope, by_name: dict[str, NodeDef]) -> _Plan | None:
    """What a marked node's subgraph would have been built from, read from its own Consts."""
    marker = node.attr[MARKER].list.s
    if len(marker) != 3 or marker[0] != _TAG:
        return None
    stripped = NodeDef.FromString(marker[2])
    suffix = marker[1].decode()
    if _refusal_of_stripped(stripped) or not node.input:
        return None
    dtype = stripped.attr["value"].tensor.dtype
    names = {tag: f"{node.name}/{tag}{suffix}" for tag in _TAGS}
    gather = node if node.op == "GatherV2" else by_name.get(names["gather"])
    if gather is None or not gather.input:
        return None
    palette_name = _source(gather.input[0])
    palette = _const_array(by_name.get(palette_name), dtype)
    if palette is None or palette.ndim != 1 or palette.size == 0:
        return None
    n = int(np.prod([d.size for d in stripped.attr["value"].tensor.tensor_shape.dim]))
    if node.op == "GatherV2":
        indices = _const_array(by_name.get(names["indices"]), _UINT8)
        labels = None if indices is None or indices.size != n else indices.reshape(-1)
    else:
        mask = _const_array(by_name.get(names["mask"]), _INT64)
        words = _const_array(by_name.get(names["words"]), _INT64)
        bits = int(mask).bit_length() if mask is not None and mask.ndim == 0 else 0
        labels = None
        if words is not None and 1 <= bits <= packing.MAX_BITS:
            if words.size * packing.per_word(bits) >= n:
                labels = packing.unpack_indices(words.reshape(-1), bits, n)
    if labels is None or (labels.size and int(labels.max()) >= palette.size):
        return None
    shared = None if palette_name == names["palette"] else palette_name
    return _Plan(node.name, stripped, packing.to_patterns(palette, dtype),
                 labels.astype(np.int64), suffix, shared)


def _refusal_of_stripped(stripped: NodeDef) -> bool:
    return (stripped.op not in CONST_OPS or "value" not in stripped.attr
            or not packing.palette_supported(stripped.attr["value"].tensor.dtype))


def _same(a: NodeDef | None, b: NodeDef) -> bool:
    return a is not None and (a.SerializeToString(deterministic=True)
                              == b.SerializeToString(deterministic=True))


def _detect(scope: _Scope) -> list[_Found]:
    """Every palette subgraph of one scope that rebuilds to exactly what is there."""
    by_name = {node.name: node for node in scope.nodes}
    readers: dict[str, set[str]] = {}
    for node in scope.nodes:
        for edge in node.input:
            readers.setdefault(_source(edge), set()).add(node.name)
    found = []
    for node in scope.nodes:
        if MARKER not in node.attr or node.attr[MARKER].WhichOneof("value") != "list":
            continue
        try:
            plan = _read(node, scope, by_name)
            rebuilt = _build(plan, scope) if plan is not None else []
        except (DecodeError, ProtobufDecodeError, UnicodeDecodeError):
            continue  # a marker or Const that is not ours
        if plan is None or not all(_same(by_name.get(r.name), r) for r in rebuilt):
            continue
        own = [r.name for r in rebuilt]
        if any(readers.get(name, set()) - set(own) for name in own[:-1]):
            continue  # another node reads an inner node: expanding would break it
        if plan.shared is not None and not _same(by_name.get(plan.shared),
                                                 _shared_node(plan.shared, plan)):
            continue
        found.append(_Found(plan, own, sum(r.ByteSize() for r in rebuilt)))
    return found


def find_palettes(graph_def: GraphDef) -> list[PaletteInfo]:
    """Every palettized tensor of a graph (main graph, then library functions, in node order).

    Returns
    -------
    list of PaletteInfo
        name, dtype, shape, palette size k, bits per index and the bytes its own nodes take.
    """
    infos = []
    for scope in _scopes(graph_def):
        for found in _detect(scope):
            infos.append(_info(scope, found.plan, found.stored_bytes))
    return infos


def palette_parts(graph_def: GraphDef) -> frozenset[str]:
    """Names (``NODE`` or ``FUNCTION/NODE``) of every node that belongs to a palette subgraph,
    shared palettes included: the compressor leaves these alone."""
    parts: set[str] = set()
    for scope in _scopes(graph_def):
        for found in _detect(scope):
            parts.update(scope.key(name) for name in found.own)
            if found.plan.shared is not None:
                parts.add(scope.key(found.plan.shared))
    return frozenset(parts)


def _left(scope: _Scope, node: NodeDef, reason: str) -> PaletteInfo:
    """The answer for a node left in the values form."""
    dtype, shape = "", ()  # type: tuple[str, tuple[int, ...]]
    if "value" in node.attr and node.attr["value"].WhichOneof("value") == "tensor":
        tensor = node.attr["value"].tensor
        dtype, shape = dtype_name(tensor.dtype), tuple(int(d.size) for d in tensor.tensor_shape.dim)
    return PaletteInfo(scope.key(node.name), scope.function, dtype, shape, reason=reason)


def _share(plans: list[tuple[_Scope, _Plan]], taken: dict[int, set[str]]) -> dict[str, NodeDef]:
    """Point the plans of each scope, dtype, device and control inputs at one common palette.

    Consts with control inputs (TF1 while-loop bodies give them one to place them in the loop's
    frame) share only with Consts in the same frame. A group keeps separate palettes if the
    common one would need more than ``packing.MAX_BITS`` bits.
    """
    groups: dict[tuple, list[_Plan]] = {}
    scopes: dict[tuple, _Scope] = {}
    for scope, plan in plans:
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
            plan.labels = np.searchsorted(union, plan.palette)[plan.labels]
            plan.palette, plan.shared = union, name
        nodes[name] = _shared_node(name, members[0])
    return nodes


def _apply(scope: _Scope, todo: dict[str, _Plan], shared: dict[str, NodeDef]) -> dict[str, int]:
    """Replace each planned Const of a scope by its subgraph, in place; returns bytes per tensor."""
    emitted: set[str] = set()
    sizes = {}
    i = 0
    while i < len(scope.nodes):
        plan = todo.get(scope.nodes[i].name)
        if plan is None or scope.nodes[i].op not in CONST_OPS:
            i += 1
            continue
        new = _build(plan, scope)
        sizes[plan.name] = sum(node.ByteSize() for node in new)
        if plan.shared is not None and plan.shared not in emitted:
            emitted.add(plan.shared)
            new.insert(0, shared[plan.shared])
        del scope.nodes[i]
        for j, node in enumerate(new):
            scope.nodes.insert(i + j, node)
        i += len(new)
    return sizes


def palettize(graph_def: GraphDef, names: Iterable[str], *,
              shared: bool = False) -> list[PaletteInfo]:
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

    Returns
    -------
    list of PaletteInfo
        One per distinct name, in the order given; ``reason`` says why a tensor was left as
        values (not a Const, not stored as ``tensor_content``, too many distinct values, ...).

    Raises
    ------
    GraphError
        If a name names no node.
    DecodeError
        Naming the node, for an inconsistent tensor.
    """
    scopes = list(_scopes(graph_def))
    by_key: dict[str, tuple[_Scope, NodeDef]] = {}
    for scope in scopes:
        for node in scope.nodes:
            by_key.setdefault(scope.key(node.name), (scope, node))
    done = {info.name: info for info in find_palettes(graph_def)}
    taken = {id(scope): {node.name for node in scope.nodes} for scope in scopes}
    answers: dict[str, PaletteInfo | tuple[_Scope, _Plan]] = {}
    for name in dict.fromkeys(names):
        if name in done:
            answers[name] = done[name]
            continue
        if name not in by_key:
            raise GraphError(f"palettize: no node is named '{name}'")
        scope, node = by_key[name]
        suffix = _suffix(node.name, taken[id(scope)])
        try:
            plan = _plan(node, suffix)
        except DecodeError as exc:
            raise DecodeError(f"node '{name}': {exc}") from None
        if isinstance(plan, str):
            answers[name] = _left(scope, node, plan)
            continue
        taken[id(scope)].update(f"{node.name}/{tag}{suffix}" for tag in _TAGS)
        answers[name] = (scope, plan)
    plans = [answer for answer in answers.values() if isinstance(answer, tuple)]
    shared_nodes = _share(plans, taken) if shared else {}
    sizes: dict[str, int] = {}
    for scope in scopes:
        todo = {plan.name: plan for owner, plan in plans if owner is scope}
        if todo:
            sizes.update({scope.key(k): v for k, v in _apply(scope, todo, shared_nodes).items()})
    return [answer if isinstance(answer, PaletteInfo)
            else _info(answer[0], answer[1], sizes[name]) for name, answer in answers.items()]


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
        found = _detect(scope)
        if not found:
            continue
        restored = {item.plan.name: _restore(item.plan) for item in found}
        drop = {name for item in found for name in item.own[:-1]}
        shared = {item.plan.shared for item in found if item.plan.shared is not None}
        still_read = {_source(edge) for node in scope.nodes
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
