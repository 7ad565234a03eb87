"""Hostile GraphDefs for the fuzz tests: protobuf wire helpers, a seeded structure-aware
generator, byte-level mutation of the fixtures, and the checker of the CLI's promises.

A helper module (not collected): tests/test_fuzz.py runs it for a time budget in CI and
tests/bench/fuzz_long.py for ten thousand cases and more.
"""

from __future__ import annotations


# --- protobuf wire format (field numbers are TensorFlow's, see proto/) -----------------------

def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer (negative int64s as their 64-bit complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings, bytes, messages, packed lists."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def vi(number: int, value: int) -> bytes:
    """A varint field (wire type 0)."""
    return varint(number << 3) + varint(value)


def attr_entry(key: bytes, attr_value: bytes) -> bytes:
    """One NodeDef.attr map entry (NodeDef field 5: key 1, AttrValue 2)."""
    return ld(5, ld(1, key) + ld(2, attr_value))


def node(name: bytes, op: bytes, *fields: bytes) -> bytes:
    """A GraphDef.node field (1) holding a NodeDef: name 1, op 2, then ``fields`` as given."""
    return ld(1, ld(1, name) + ld(2, op) + b"".join(fields))


def const(name: bytes, tensor: bytes, op: bytes = b"Const") -> bytes:
    """A Const node whose attr "value" holds the serialized TensorProto ``tensor`` (field 8)."""
    return node(name, op, attr_entry(b"value", ld(8, tensor)))
