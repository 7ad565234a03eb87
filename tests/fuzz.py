"""Hostile GraphDefs for the fuzz tests: protobuf wire helpers, a seeded structure-aware
generator and byte-level mutation of the fixtures (``make_case(seed)``).

A helper module (not collected); tests/fuzz_check.py holds the promises checked.
tests/test_fuzz.py runs both for a time budget, tests/bench/fuzz_long.py for ten thousand cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from google.protobuf import text_format

from minigraph.schema import GraphDef


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


def node_def(name: bytes, op: bytes, *fields: bytes) -> bytes:
    """A NodeDef: name (1), op (2), then ``fields`` as given."""
    return ld(1, name) + ld(2, op) + b"".join(fields)


def node(name: bytes, op: bytes, *fields: bytes) -> bytes:
    """A GraphDef.node field (1) holding a NodeDef."""
    return ld(1, node_def(name, op, *fields))


def const(name: bytes, tensor: bytes, op: bytes = b"Const") -> bytes:
    """A Const node whose attr "value" holds the serialized TensorProto ``tensor`` (field 8)."""
    return node(name, op, attr_entry(b"value", ld(8, tensor)))


# --- hostile values ------------------------------------------------------------------------

# Largest finite value and smallest subnormal of each float DataType (from the formats'
# exponent and mantissa widths: IEEE half/single/double, bfloat16 = single's top 16 bits).
FLOAT_LIMITS = {19: (65504.0, 2.0**-24), 14: (3.3895313892515355e38, 2.0**-133),
                1: (3.4028234663852886e38, 2.0**-149), 2: (1.7976931348623157e308, 5e-324)}
STORAGE = {19: "<f2", 14: "<f4", 1: "<f4", 2: "<f8"}  # the float32 of bfloat16 is narrowed
VALUE_MODES = ("normal", "near_max", "denormal", "signed_zero", "all_nan", "all_inf",
               "sprinkled", "few", "huge", "mixed_scale", "above_narrower", "near_max")
# Beside a narrower type near its own largest value, a wider one just above it shares a
# global codebook's top cluster: half's 65504 for float and bfloat16, float's for double.
_NARROWER_MAX = {1: [65504.0, 3.3895313892515355e38], 14: [65504.0], 2: [3.4028234663852886e38]}


def hostile_values(rng, enum: int, n: int, modes: tuple[str, ...] = VALUE_MODES):
    """``n`` float values for a float DataType, drawn in one of ``modes`` (float64 array)."""
    big, tiny = FLOAT_LIMITS[enum]
    mode = modes[rng.integers(len(modes))]
    signs = rng.choice([-1.0, 1.0], n)
    if mode == "near_max":
        values = big * (1 - rng.random(n) * 10.0 ** -rng.integers(1, 6)) * signs
    elif mode == "denormal":
        values = tiny * rng.integers(0, 300, n) * signs
    elif mode == "signed_zero":
        values = np.where(rng.random(n) < 0.5, -0.0, 0.0)
        values[rng.random(n) < 0.1] = 1.0
    elif mode == "all_nan":
        values = np.full(n, np.nan)
    elif mode == "all_inf":
        values = np.inf * signs
    elif mode == "few":
        values = rng.choice(rng.standard_normal(rng.integers(1, 6)), n)
    elif mode == "above_narrower" and enum in _NARROWER_MAX:
        edge = float(rng.choice(_NARROWER_MAX[enum]))
        values = np.minimum(edge * (1 + rng.random(n) * 10.0 ** -rng.integers(0, 4)), big) * signs
    elif mode == "huge":
        values = rng.standard_normal(n) * 10.0 ** rng.integers(100, 300)
    elif mode == "mixed_scale":
        values = rng.standard_normal(n) * 10.0 ** rng.integers(-40, 40, n).astype(float)
    else:
        values = rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3)
    if mode in ("sprinkled", "near_max", "huge", "mixed_scale"):
        for special in (np.nan, np.inf, -np.inf, -0.0):
            values[rng.random(n) < 0.02] = special
    return values


def _storage_bytes(values, enum: int) -> bytes:
    """Little-endian bytes of float values as ``enum`` stores them (bfloat16 truncated)."""
    with np.errstate(all="ignore"):  # overflow to ±Inf is part of the test
        narrow = np.asarray(values).astype(STORAGE[enum])
    if enum == 14:
        return (narrow.view("<u4") >> 16).astype("<u2").tobytes()
    return narrow.tobytes()


_FIELDS = {1: 5, 2: 6, 14: 13, 19: 13}  # float_val, double_val, half_val (TensorProto fields)


def _typed_list(values, enum: int) -> bytes:
    """The packed typed-value field holding ``values`` (half/bfloat16 as int32 varints)."""
    raw = _storage_bytes(values, enum)
    if enum in (14, 19):
        raw = b"".join(varint(v) for v in np.frombuffer(raw, "<u2").tolist())
    return ld(_FIELDS[enum], raw)


def _shape(dims) -> bytes:
    return ld(2, b"".join(ld(2, vi(1, d)) for d in dims))


def _hostile_shape(rng, n: int, hostility: float) -> tuple[list[int], bytes]:
    """A shape of ``n`` elements, or (with probability ``hostility``) one TensorFlow would refuse
    or that declares far more than is stored: negative, huge, int64-overflowing, unknown rank,
    rank 255."""
    if rng.random() >= hostility:
        dims = [n] if rng.random() < 0.6 else [1, n] if n else [0, 3]
        return dims, _shape(dims)
    choice = rng.integers(7)
    dims = [[-1, n], [2**40], [2**32, 2**32], [2**31, 2**32], [1] * 255, [2**28],
            [0, 2**62]][choice]
    extra = ld(2, vi(3, 1)) if rng.random() < 0.2 else b""  # unknown_rank = true
    return dims, _shape(dims) + extra


def float_tensor(rng, enum: int, hostility: float = 0.2,
                 modes: tuple[str, ...] = VALUE_MODES) -> bytes:
    """A serialized float TensorProto in a random encoding, sometimes inconsistent."""
    # 20000 float32 values are read in place (over 64 KiB); 300000 take the binned float32 path.
    n = int(rng.choice([0, 1, 3, 200, 256, 257, 1000, 3000, 20000] + [300000] * (
        rng.random() < 0.1)))
    dims, shape = _hostile_shape(rng, n, hostility)
    values = hostile_values(rng, enum, n, modes)
    head = vi(1, enum) + shape
    encoding = rng.choice(["content", "content", "list", "padded", "splat", "zeros"])
    encoding = "bad" if rng.random() < hostility / 2 else encoding
    if encoding == "content" and n:
        return head + ld(4, _storage_bytes(values, enum))
    if encoding == "list" and n:
        return head + _typed_list(values, enum)
    if encoding == "padded" and n > 2:
        return head + _typed_list(values[: rng.integers(2, n)], enum)
    if encoding == "splat" and n:
        return head + _typed_list(values[:1], enum)
    if encoding == "bad" and n:  # content a few bytes off, or more values than elements
        if rng.random() < 0.5:
            return head + ld(4, _storage_bytes(values, enum)[: -int(rng.integers(1, 3))])
        return head + _typed_list(np.concatenate([values, values[:2]]), enum)
    return head


# Bytes per element of the non-float DataTypes numpy holds (TensorFlow's types.proto numbers).
_ITEM_BYTES = {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 8: 8, 9: 8, 10: 1, 11: 1, 12: 1, 13: 4,
               14: 2, 15: 2, 16: 2, 17: 2, 18: 16, 19: 2, 22: 4, 23: 8}


def other_tensor(rng, hostility: float = 0.2) -> bytes:
    """A TensorProto of any DataType number (integer, string, complex, unknown, reference,
    huge), its payload sometimes of another type than its dtype says."""
    enum = int(rng.choice(list(range(33)) + [101, 119, 201, 100100, 2**31 - 1]))
    n = int(rng.integers(0, 400))
    dims, shape = _hostile_shape(rng, n, hostility)
    if rng.random() >= hostility:  # consistent: raw content of the right length, or strings
        width = _ITEM_BYTES.get(enum)
        if width is None:
            enum = 7
            return vi(1, 7) + shape + b"".join(ld(8, rng.bytes(3)) for _ in range(n))
        return vi(1, enum) + shape + (ld(4, rng.bytes(n * width)) if n else b"")
    payload = rng.integers(-2**31, 2**31, n)
    field = int(rng.choice([4, 5, 7, 8, 9, 10, 12, 13]))
    if field == 4:
        body = ld(4, rng.bytes(n * int(rng.choice([1, 2, 4, 8, 16]))))
    elif field == 8:
        body = b"".join(ld(8, rng.bytes(int(rng.integers(0, 9)))) for _ in range(n))
    else:
        body = ld(field, b"".join(varint(int(v)) for v in payload)) if field in (7, 10, 13) \
            else ld(field, rng.bytes(n * (8 if field == 12 else 4)))
    return vi(1, enum) + shape + body


def _const_node(rng, name: bytes, hostility: float, modes: tuple[str, ...]) -> bytes:
    """A Const (sometimes HostConst) NodeDef, with the odd structural defect or repeated field."""
    float_enum = int(rng.choice([1, 1, 2, 14, 19]))
    tensor = float_tensor(rng, float_enum, hostility, modes) if rng.random() < 0.8 else \
        other_tensor(rng, hostility)
    op = b"HostConst" if rng.random() < 0.1 else b"Const"
    roll = rng.random() / max(hostility, 1e-9) * 0.2  # the odds below are for hostility 0.2
    if roll < 0.03:
        return node_def(name, op)  # no value attr
    if roll < 0.06:  # value attr of the wrong kind: a string, or a list of tensors
        return node_def(name, op, attr_entry(b"value", ld(2, b"x") if rng.random() < 0.5
                                         else ld(1, ld(8, tensor))))
    if roll < 0.10:  # the payload field repeated: protobuf keeps the last copy
        tensor = ld(4, rng.bytes(int(rng.choice([4, 1 << 16, 70000])))) + tensor
    if roll < 0.13:  # the tensor field or the whole value entry repeated
        return node_def(name, op, attr_entry(b"value", ld(8, tensor) + ld(8, float_tensor(rng, 1))))
    if roll < 0.16:
        return node_def(name, op, attr_entry(b"value", ld(8, float_tensor(rng, float_enum))),
                    attr_entry(b"value", ld(8, tensor)))
    if roll < 0.18:  # the op repeated after the attrs: the last one counts
        return node_def(name, op, attr_entry(b"value", ld(8, tensor)), ld(2, b"Identity"))
    dtype_attr = attr_entry(b"dtype", vi(6, float_enum)) if rng.random() < 0.5 else b""
    return node_def(name, op, dtype_attr, attr_entry(b"value", ld(8, tensor)))


_NAMES = [b"w", b"dense/kernel", b"a\nminigraph: error: forged", b"\x1b[2K", b"\xc3\xa9",
          b"", b"b'q\"", b"x" * 300]


def _name(rng, index: int, hostility: float) -> bytes:
    if rng.random() < hostility / 2:
        return _NAMES[rng.integers(len(_NAMES))]  # odd, empty or duplicate names
    return b"c%d" % index


def generated_graph(rng, hostility: float = 0.2) -> bytes:
    """A binary GraphDef of Consts with hostile values in the main graph and in a function
    library; ``hostility`` scales the odds of structural defects (0: none)."""
    parts = []
    # One graph in four has every float tensor at a dtype's limits, or just above a narrower
    # dtype's: where a shared codebook has to respect each dtype's range.
    modes = ("near_max", "above_narrower") if rng.random() < 0.25 else VALUE_MODES
    names = [_name(rng, i, hostility) for i in range(int(rng.integers(1, 6)))]
    for name in names:
        parts.append(ld(1, _const_node(rng, name, hostility, modes)))
    if names and rng.random() < 0.5:
        source = names[-1] if rng.random() >= hostility / 2 else b"missing"
        parts.append(node(b"out", b"Identity", ld(3, source)))
    if rng.random() < 0.3:  # a library: many functions, each holding Consts
        functions = []
        for f in range(int(rng.integers(1, 40))):
            signature = ld(1, ld(1, b"f%d" % (f % 5 if rng.random() < hostility / 2 else f)))
            body = b"".join(ld(3, _const_node(rng, _name(rng, i, hostility), hostility, modes))
                            for i in range(int(rng.integers(0, 3))))
            functions.append(ld(1, signature + body))
        parts.append(ld(2, b"".join(functions)))
    return b"".join(parts)


def mutated(rng, data: bytes) -> bytes:
    """``data`` with a few random byte-level edits: flips, overwrites, inserts, deletions,
    duplicated or cut ranges."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        if not buf:
            break
        at = int(rng.integers(len(buf)))
        kind = rng.integers(6)
        if kind == 0:
            buf[at] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            buf[at] = int(rng.choice([0, 0x7F, 0x80, 0xFF, int(rng.integers(256))]))
        elif kind == 2:
            buf[at:at] = rng.bytes(int(rng.integers(1, 9)))
        elif kind == 3:
            del buf[at:at + int(rng.integers(1, 17))]
        elif kind == 4:
            end = min(len(buf), at + int(rng.integers(1, 64)))
            buf[end:end] = buf[at:end]
        else:
            del buf[at:]
    return bytes(buf)


# --- cases -----------------------------------------------------------------------------------

FIXTURE_FILES = sorted((Path(__file__).parent / "fixtures").glob("*.pb"))


@dataclass(frozen=True)
class Case:
    """One fuzz case: the input file's bytes and the compress options to run it with."""

    seed: int
    data: bytes
    options: tuple[str, ...]
    suffix: str = ".pb"  # ".pbtxt": text format


def make_case(seed: int) -> Case:
    """The case for a seed: a generated GraphDef (sometimes mutated) or a mutated fixture."""
    rng = np.random.default_rng(seed)
    roll = rng.random()
    if roll < 0.3:
        data = mutated(rng, FIXTURE_FILES[rng.integers(len(FIXTURE_FILES))].read_bytes())
    else:
        data = generated_graph(rng, float(rng.choice([0.0, 0.0, 0.05, 0.2, 0.5])))
        if roll < 0.4:
            data = mutated(rng, data)
    options = ["-k", str(rng.choice([1, 2, 3, 4, 16, 256]))]
    if rng.random() < 0.35:
        options.append("--global_clusters")
    options += ["--min-n-weights", str(rng.choice([0, 1, 256]))]
    options += ["--method", str(rng.choice(["auto", "auto", "lloyd", "optimal"]))]
    options += ["--init", str(rng.choice(["auto", "linear", "density", "kmeans++", "random"]))]
    if rng.random() < 0.03:  # a usage error: exit 2
        options += [str(rng.choice(["-k", "--min-n-weights", "--workers"])), "-1"]
    if rng.random() < 0.1:  # the same graph in text format, when protobuf reads it
        try:
            text = text_format.MessageToString(GraphDef.FromString(data)).encode()
        except Exception:  # noqa: BLE001 - not a GraphDef: stays binary
            return Case(seed, data, tuple(options))
        return Case(seed, text, tuple(options), ".pbtxt")
    return Case(seed, data, tuple(options))
