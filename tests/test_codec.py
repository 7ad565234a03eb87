"""TensorProto ⇄ ndarray: round trips, every TensorFlow encoding, TensorFlow's own decoded bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigraph import DecodeError, MinigraphError, codec, from_array, read_graph, to_array
from minigraph.graph import iter_consts
from minigraph.schema import GraphDef, TensorProto

from conftest import FIXTURES, MODELS, digest_values

# TensorFlow's facts, written out independently of minigraph/dtypes.py so that a wrong row there
# fails here: DataType number → (numpy dtype of one element, typed value field).
TF_TYPES = {
    1: ("<f4", "float_val"), 2: ("<f8", "double_val"), 3: ("<i4", "int_val"),
    4: ("u1", "int_val"), 5: ("<i2", "int_val"), 6: ("i1", "int_val"),
    8: ("<c8", "scomplex_val"), 9: ("<i8", "int64_val"), 10: ("?", "bool_val"),
    11: ("i1", "int_val"), 12: ("u1", "int_val"), 13: ("<i4", "int_val"),
    14: ("<u2", "half_val"), 15: ("<i2", "int_val"), 16: ("<u2", "int_val"),
    17: ("<u2", "int_val"), 18: ("<c16", "dcomplex_val"), 19: ("<f2", "half_val"),
    22: ("<u4", "uint32_val"), 23: ("<u8", "uint64_val"),
}
NUMERIC = sorted(TF_TYPES)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def _bits(values: np.ndarray) -> np.ndarray:
    """Values as unsigned integers of the same width, so NaN payloads and -0.0 compare exactly."""
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        return values.view(np.uint8)
    if values.dtype.itemsize == 16:
        return values.view("<u8").reshape(values.shape + (2,))
    return values.view(f"u{values.dtype.itemsize}")


@st.composite
def tensors(draw, enum: int):
    """(array as from_array takes it, the storage bit patterns TensorFlow would hold)."""
    storage, _ = TF_TYPES[enum]
    shape = draw(SHAPES)
    if storage == "?":
        raw = draw(hnp.arrays(np.bool_, shape))
        return raw, raw
    width = np.dtype(storage).itemsize
    unit = min(width, 8)
    raw = draw(hnp.arrays(f"<u{unit}", shape + ((width // unit,) if width > 8 else ())))
    patterns = raw.view(storage).reshape(shape)
    if enum == 14:  # bfloat16: the caller hands float32; the patterns are its high halves
        return (patterns.astype(np.uint32) << np.uint32(16)).view(np.float32), patterns
    return patterns, patterns


@pytest.mark.parametrize("enum", NUMERIC)
@given(data=st.data())
def test_round_trip_is_bit_identical(enum, data):
    array, patterns = data.draw(tensors(enum))
    tensor = from_array(array, dtype=enum)
    parsed = TensorProto.FromString(tensor.SerializeToString())
    decoded = to_array(parsed)
    assert decoded.shape == array.shape
    assert parsed.dtype == enum
    if enum == 14:
        assert np.array_equal(_bits(decoded), _bits(array))
        assert np.array_equal(np.frombuffer(parsed.tensor_content, "<u2"), patterns.reshape(-1))
    else:
        assert np.array_equal(_bits(decoded.astype(array.dtype)), _bits(array))


@given(st.lists(st.binary(max_size=8), max_size=6))
def test_strings_round_trip(items):
    array = np.empty(len(items), dtype=object)
    array[:] = items
    parsed = TensorProto.FromString(from_array(array).SerializeToString())
    assert parsed.dtype == 7
    assert to_array(parsed).tolist() == items


def _typed(enum: int, shape: tuple[int, ...], values: np.ndarray) -> TensorProto:
    """A TensorProto holding ``values`` in the typed field, written by hand from TF's rules."""
    storage, field = TF_TYPES[enum]
    tensor = TensorProto(dtype=enum)
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)
    flat = np.asarray(values, dtype=storage).reshape(-1)
    if field == "half_val":
        items = flat.view("<u2").astype(int).tolist()
    elif field in ("scomplex_val", "dcomplex_val"):
        items = flat.view("<f4" if enum == 8 else "<f8").tolist()
    else:
        items = flat.tolist()
    getattr(tensor, field).extend(items)
    return tensor


def _content(enum: int, shape: tuple[int, ...], values: np.ndarray) -> TensorProto:
    storage, _ = TF_TYPES[enum]
    tensor = TensorProto(dtype=enum, tensor_content=np.asarray(values, storage).tobytes())
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)
    return tensor


@pytest.mark.parametrize("enum", NUMERIC)
@given(data=st.data())
def test_every_encoding_decodes_alike(enum, data):
    _, patterns = data.draw(tensors(enum))
    flat = patterns.reshape(-1)
    n = flat.size
    if n == 0:
        return
    cut = data.draw(st.integers(1, n))
    padded = flat.copy()
    padded[cut:] = flat[cut - 1]  # what a short list of `cut` values means
    shape = (n,)
    reference = _bits(to_array(_content(enum, shape, padded)))
    assert np.array_equal(_bits(to_array(_typed(enum, shape, padded))), reference)
    assert np.array_equal(_bits(to_array(_typed(enum, shape, padded[:cut]))), reference)
    splat = np.full(n, flat[0])
    assert np.array_equal(_bits(to_array(_typed(enum, shape, splat[:1]))),
                          _bits(to_array(_content(enum, shape, splat))))
    zeros = to_array(_typed(enum, shape, flat[:0]))
    assert np.array_equal(_bits(zeros), _bits(to_array(_content(enum, shape, np.zeros(n, flat.dtype)))))


def test_string_short_list_pads_with_last_and_empty_means_empty_strings():
    tensor = TensorProto(dtype=7)
    tensor.tensor_shape.dim.add(size=4)
    tensor.string_val.extend([b"a", b"\xff"])
    assert to_array(tensor).tolist() == [b"a", b"\xff", b"\xff", b"\xff"]
    del tensor.string_val[:]
    assert to_array(tensor).tolist() == [b""] * 4


@pytest.mark.parametrize("value, expected_bits", [
    (1.0, 0x3F80),
    (1.0 + 2**-8, 0x3F80),          # exactly half an ulp above 1: ties to the even 0x3F80
    (1.0 + 3 * 2**-8, 0x3F82),      # half an ulp above 0x3F81: ties to the even 0x3F82
    (1.0 + 2**-8 + 2**-16, 0x3F81),  # just past the tie: rounds up
    (-2.0, 0xC000),
    (float("inf"), 0x7F80),
    (3.4e38, 0x7F80),               # above bfloat16's largest finite value: rounds to +inf
])
def test_bfloat16_narrowing_rounds_to_nearest_even(value, expected_bits):
    assert int(codec.float32_to_bfloat16(np.float32(value))) == expected_bits


def test_bfloat16_nan_stays_nan_when_its_payload_is_in_the_low_half():
    nan = np.array([0x7F800001], dtype=np.uint32).view(np.float32)
    assert np.isnan(codec.bfloat16_to_float32(codec.float32_to_bfloat16(nan)))


def _tensor(enum, shape, **fields):
    tensor = TensorProto(dtype=enum, **fields)
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)
    return tensor


@pytest.mark.parametrize("tensor, words", [
    (_tensor(1, (3,), tensor_content=b"\0" * 10), ["10 bytes", "expected 12"]),
    (_tensor(1, (2,), float_val=[1, 2, 3]), ["3 values", "2 elements"]),
    (_tensor(1, (2, -1)), ["negative"]),
    (_tensor(20, ()), ["DT_RESOURCE"]),
    (_tensor(101, (1,)), ["DT_FLOAT_REF"]),
    (_tensor(99, (1,)), ["DT_99"]),
    (_tensor(8, (2,), scomplex_val=[1, 2, 3]), ["3 entries", "pairs"]),
    (_tensor(7, (1,), tensor_content=b"abcd"), ["DT_STRING", "tensor_content"]),
])
def test_inconsistent_tensors_raise_with_numbers(tensor, words):
    with pytest.raises(DecodeError) as info:
        to_array(tensor)
    assert isinstance(info.value, ValueError) and isinstance(info.value, MinigraphError)
    for word in words:
        assert word in str(info.value)


def test_huge_splat_is_described_without_expanding():
    tensor = _tensor(1, (2**20, 2**20), float_val=[0.5])
    info = codec.describe(tensor)
    assert (info.n_elements, info.encoding, info.n_stored, info.max_distinct) == (2**40, "splat", 1, 1)
    assert codec.stored_values(tensor).tolist() == [0.5]


def test_set_values_keeps_dtype_shape_and_other_fields():
    tensor = _tensor(19, (2, 2), half_val=[0x3C00], version_number=7)
    codec.set_values(tensor, np.array([1, 2, 3, 4], np.float16))
    assert (tensor.dtype, [d.size for d in tensor.tensor_shape.dim]) == (19, [2, 2])
    assert tensor.version_number == 7 and not tensor.half_val
    assert to_array(tensor).tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("model", MODELS)
def test_every_fixture_const_decodes_to_tensorflows_bytes(model, expected):
    facts = expected[model]["consts"]
    seen = {}
    for ref in iter_consts(read_graph(FIXTURES / model)):
        values = to_array(ref.tensor)
        seen[ref.name] = {"dtype": codec.describe(ref.tensor).dtype_name,
                          "shape": list(values.shape), "sha256": digest_values(values)}
    assert sorted(seen) == sorted(facts)
    for name, fact in facts.items():
        got = seen[name]
        assert (got["dtype"], got["shape"]) == (fact["dtype"], fact["shape"]), name
        assert got["sha256"] == fact["sha256"], f"{model}: {name} decodes differently from TF"


def _declared(dims: list[int], **fields) -> TensorProto:
    tensor = TensorProto(dtype=1, **fields)
    for size in dims:
        tensor.tensor_shape.dim.add(size=size)
    return tensor


@pytest.mark.parametrize("dims, count", [
    ([2**32, 2**32], 2**64),             # wraps to 0 in int64
    ([2**32 + 1, 2**32], 2**64 + 2**32),  # wraps to 2**32, a plausible size
    ([2**62, 2], 2**63),                  # one past int64's largest value
])
def test_shapes_whose_element_count_overflows_int64_are_refused(dims, count):
    tensor = _declared(dims, float_val=[1.0, 2.0])
    with pytest.raises(DecodeError, match=f"has {count} elements"):
        codec.describe(tensor)
    with pytest.raises(DecodeError):
        to_array(tensor)


def test_the_largest_int64_element_count_is_accepted_as_a_splat():
    # 3 × 3074457345618258602 = 2**63 - 2 (by hand), just within int64.
    info = codec.describe(_declared([3, 3074457345618258602], float_val=[0.5]))
    assert (info.n_elements, info.encoding) == (2**63 - 2, "splat")


def test_rank_is_held_to_tensorflows_254_dimensions():
    assert codec.describe(_declared([1] * 254)).n_elements == 1
    with pytest.raises(DecodeError, match="255 dimensions"):
        codec.describe(_declared([1] * 255))


@pytest.mark.tensorflow
@pytest.mark.parametrize("dims", [[2**32, 2**32], [2**62, 2], [3, 3074457345618258602],
                                  [1] * 254, [1] * 255])
def test_tensorflow_refuses_exactly_the_shapes_describe_refuses(dims):
    import tensorflow as tf

    graph_def = GraphDef()
    node = graph_def.node.add(name="c", op="Const")
    node.attr["dtype"].type = 1
    node.attr["value"].tensor.CopyFrom(_declared(dims, float_val=[1.0]))
    try:
        codec.describe(node.attr["value"].tensor)
        ours = True
    except DecodeError:
        ours = False
    with tf.Graph().as_default():
        try:
            tf.compat.v1.import_graph_def(
                tf.compat.v1.GraphDef.FromString(graph_def.SerializeToString()), name="")
            theirs = True
        except ValueError:
            theirs = False
    assert ours == theirs
