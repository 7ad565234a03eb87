"""Protobuf wire format at the byte level: large tensor payloads lifted out of a GraphDef's bytes
before parsing, and payloads put back into serialized bytes when writing."""

from __future__ import annotations

import itertools
import os
from typing import Mapping, Union

from .errors import GraphError

__all__ = ["Chunk", "splice", "lift_tensor_contents", "new_marker", "LIFT_MIN_BYTES"]

Chunk = Union[bytes, memoryview]

# tensor_content payloads at least this large stay in the file's bytes instead of being copied
# into the parsed message (see lift_tensor_contents).
LIFT_MIN_BYTES = 1 << 16

# Where a Const's tensor_content sits, as (message, field number) -> the field's message:
# GraphDef.node / GraphDef.library.function[].node_def -> NodeDef.attr (map entry) -> .value
# (AttrValue) -> .tensor (TensorProto) -> .tensor_content (field 4). Numbers are TensorFlow's.
_CHILD = {
    ("GraphDef", 1): "NodeDef", ("GraphDef", 2): "FunctionDefLibrary",
    ("FunctionDefLibrary", 1): "FunctionDef", ("FunctionDef", 3): "NodeDef",
    ("NodeDef", 5): "AttrEntry", ("AttrEntry", 2): "AttrValue", ("AttrValue", 8): "TensorProto",
    ("TensorProto", 4): "content",
}
_CONST_OPS = (b"Const", b"HostConst")


_NONCE = os.urandom(12)  # per process: no file's own bytes can hold a marker by chance
_SERIAL = itertools.count()


def new_marker() -> bytes:
    """A placeholder for one payload, unique within the process, 28 bytes long.

    Markers stand in a tensor's ``tensor_content`` while its real bytes live elsewhere (lifted
    out of an input file, or new values not yet written); :func:`splice` swaps them back.
    """
    return b"minigraph:" + _NONCE + next(_SERIAL).to_bytes(6, "little")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _skip(buf: bytes, pos: int, wire_type: int) -> int:
    """Position after a field's payload (length-delimited fields are handled by the caller)."""
    if wire_type == 0:
        return _read_varint(buf, pos)[1]
    if wire_type in (1, 5):
        return pos + (8 if wire_type == 1 else 4)
    raise GraphError(f"unexpected wire type {wire_type}")  # groups: GraphDef has none


def _field(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, payload start, field end) of the field at ``pos``; the payload start is -1 unless
    the field is length-delimited."""
    tag, pos = _read_varint(buf, pos)
    if tag & 7 != 2:
        return tag, -1, _skip(buf, pos, tag & 7)
    length, body = _read_varint(buf, pos)
    return tag, body, body + length


def splice(buf: bytes, start: int, end: int, hits: list[tuple[int, bytes]],
            payloads: Mapping[bytes, Chunk]) -> tuple[list[Chunk], int]:
    """Chunks of buf[start:end] (a message) with each marker field's payload replaced and the
    lengths of every message enclosing one rewritten; returns (chunks, total length)."""
    chunks: list[Chunk] = []
    view = memoryview(buf)
    flushed = pos = start
    while pos < end and hits:
        field_start = pos
        tag, body, pos = _field(buf, pos)
        length = pos - body
        if body < 0:
            continue
        inside = [hit for hit in hits if body <= hit[0] < pos]
        if not inside:
            continue
        chunks.append(view[flushed:field_start])
        offset, marker = inside[0]
        if offset == body and length == len(marker):  # the marker field itself
            inner: list[Chunk] = [payloads[marker]]
            inner_length = memoryview(payloads[marker]).nbytes
        else:
            inner, inner_length = splice(buf, body, pos, inside, payloads)
        chunks += [_varint(tag), _varint(inner_length), *inner]
        hits = [hit for hit in hits if hit not in inside]
        flushed = pos
    chunks.append(view[flushed:end])
    total = sum(memoryview(chunk).nbytes for chunk in chunks)
    return chunks, total


def _lift(buf: bytes, start: int, end: int, kind: str,
          lifted: dict[bytes, memoryview]) -> tuple[list[Chunk], int]:
    """Chunks of the message buf[start:end] of type ``kind`` with large tensor contents replaced
    by markers (recorded in ``lifted``); returns (chunks, total length)."""
    view = memoryview(buf)
    chunks: list[Chunk] = []
    flushed = pos = start
    const = kind != "NodeDef"  # a NodeDef's attrs are entered only if its op is a Const
    while pos < end:
        field_start = pos
        tag, body, pos = _field(buf, pos)
        length = pos - body
        if body < 0:
            continue
        if pos > end:
            raise GraphError("truncated field")
        if kind == "NodeDef" and tag >> 3 == 2:
            const = bytes(view[body:pos]) in _CONST_OPS
        child = _CHILD.get((kind, tag >> 3))
        if child is None or (kind == "NodeDef" and not const):
            continue
        if child == "content":
            if length < LIFT_MIN_BYTES:
                continue
            marker = new_marker()
            lifted[marker] = view[body:pos]
            inner: list[Chunk] = [marker]
            inner_length = len(marker)
        else:
            inner, inner_length = _lift(buf, body, pos, child, lifted)
            if inner_length == length:
                continue  # nothing lifted inside: keep the bytes as they are
        chunks += [view[flushed:field_start], _varint(tag), _varint(inner_length), *inner]
        flushed = pos
    chunks.append(view[flushed:end])
    return chunks, sum(memoryview(chunk).nbytes for chunk in chunks)


def lift_tensor_contents(data: bytes) -> tuple[bytes, dict[bytes, memoryview]]:
    """A binary GraphDef's bytes with every large Const ``tensor_content`` replaced by a marker.

    Returns the smaller bytes (a valid GraphDef whose big tensors hold markers) and, for each
    marker, a view of the payload inside ``data``: parsing the result and reading payloads
    from the views copies none of them. Order and every other byte are kept, so putting the
    payloads back with :func:`splice` restores the input exactly.

    Raises
    ------
    GraphError
        If the bytes are not well-formed protobuf (callers parse normally to report why).
    """
    lifted: dict[bytes, memoryview] = {}
    try:
        chunks, _ = _lift(data, 0, len(data), "GraphDef", lifted)
    except IndexError:
        raise GraphError("truncated protobuf data") from None
    if not lifted:
        return data, lifted
    return b"".join(chunks), lifted
