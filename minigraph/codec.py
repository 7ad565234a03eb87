"""TensorProto ⇄ numpy: the only module that reads or writes tensor value fields."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import dtypes
from .dtypes import DTypeInfo
from .errors import DecodeError
from .schema import TensorProto

__all__ = ["TensorInfo", "describe", "to_array", "stored_values", "from_array", "set_values",
           "content_of", "set_placeholder", "round_to_dtype",
           "bfloat16_to_float32", "float32_to_bfloat16"]

_BF16 = dtypes.DT_BFLOAT16
_STRING = dtypes.DT_STRING
# TensorFlow's shape limits (tensorflow/core/framework/tensor_shape.h: MaxDimensions is 254,
# and element counts are int64, checked for overflow when a shape is built).
_MAX_RANK = 254
_MAX_ELEMENTS = 2**63 - 1


@dataclass(frozen=True)
class TensorInfo:
    """What a TensorProto holds, learned without expanding its values.

    ``encoding`` is one of ``content`` (raw ``tensor_content`` bytes), ``values`` (a full typed
    list), ``padded`` (a shorter list, padded with its last value), ``splat`` (one stored value
    repeated), ``zeros`` (no payload: all zeros) or ``empty`` (zero elements).
    ``max_distinct`` bounds the number of distinct values without decoding them.
    """

    dtype: int
    dtype_name: str
    shape: tuple[int, ...]
    n_elements: int
    encoding: str
    n_stored: int
    nbytes: int
    max_distinct: int


def _shape(tensor: TensorProto) -> tuple[tuple[int, ...], int]:
    """The shape and its element count, counted exactly and held to TensorFlow's limits."""
    shape_proto = tensor.tensor_shape
    if shape_proto.unknown_rank:
        raise DecodeError("tensor shape has unknown rank")
    if len(shape_proto.dim) > _MAX_RANK:
        raise DecodeError(f"tensor shape has {len(shape_proto.dim)} dimensions, more than "
                          f"TensorFlow's {_MAX_RANK}")
    shape = tuple(int(d.size) for d in shape_proto.dim)
    if any(d < 0 for d in shape):
        raise DecodeError(f"tensor shape {list(shape)} has a negative dimension")
    n_elements = math.prod(shape)  # Python integers: exact, no int64 wrap-around
    if n_elements > _MAX_ELEMENTS:
        raise DecodeError(f"tensor shape {list(shape)} has {n_elements} elements, more than "
                          f"TensorFlow can count (2**63 - 1)")
    return shape, n_elements


def _n_stored(tensor: TensorProto, info: DTypeInfo) -> int:
    """Number of elements stored in the typed field (complex values count as pairs)."""
    n_entries = len(getattr(tensor, info.field))
    if n_entries % info.per_item:
        raise DecodeError(f"{info.field} has {n_entries} entries, not a whole number of "
                          f"{info.name} (real, imaginary) pairs")
    return n_entries // info.per_item


def describe(tensor: TensorProto, content: bytes | memoryview | None = None) -> TensorInfo:
    """Check a TensorProto's consistency and summarise it without expanding its values.

    Parameters
    ----------
    tensor : TensorProto
    content : bytes-like, optional
        The tensor's ``tensor_content`` when it is kept outside the message (a view into the
        file's bytes, see ``pbfile.parse_graph_lifted``); by default the message's own.

    Returns
    -------
    TensorInfo

    Raises
    ------
    DecodeError
        Unknown or unrepresentable dtype, negative dimension, more than 254 dimensions or
        2**63 - 1 elements, ``tensor_content`` whose length is not elements × item size, more
        stored values than elements, a string tensor in ``tensor_content``.
    """
    return _describe(tensor, tensor.tensor_content if content is None else content)


def _describe(tensor: TensorProto, content: bytes | memoryview) -> TensorInfo:
    """:func:`describe`, given ``tensor.tensor_content`` (reading it copies the bytes)."""
    info = dtypes.lookup(tensor.dtype)
    shape, n_elements = _shape(tensor)
    if content:
        if info.enum == _STRING:
            raise DecodeError("a DT_STRING tensor cannot be stored in tensor_content")
        expected = n_elements * info.itemsize
        if len(content) != expected:
            raise DecodeError(f"tensor_content has {len(content)} bytes, expected {expected} "
                              f"({n_elements} elements × {info.itemsize} bytes of {info.name})")
        return TensorInfo(info.enum, info.name, shape, n_elements, "content", n_elements,
                          len(content), n_elements)
    n_stored = _n_stored(tensor, info)
    if n_stored > n_elements:
        raise DecodeError(f"{info.field} has {n_stored} values for {n_elements} elements "
                          f"of shape {list(shape)}")
    nbytes = tensor.ByteSize()
    if n_elements == 0:
        encoding, bound = "empty", 0
    elif n_stored == 0:
        encoding, bound = "zeros", 1
    elif n_stored == n_elements:
        encoding, bound = "values", n_elements
    elif n_stored == 1:
        encoding, bound = "splat", 1
    else:
        encoding, bound = "padded", n_stored
    return TensorInfo(info.enum, info.name, shape, n_elements, encoding, n_stored, nbytes, bound)


def bfloat16_to_float32(bits: npt.NDArray[np.uint16]) -> npt.NDArray[np.float32]:
    """Widen bfloat16 bit patterns to the float32 values they denote (exact: a 16-bit shift)."""
    # np.uint32 shift: numpy 1.x would widen a 0-d uint32 shifted by a Python int to int64.
    return (np.asarray(bits, dtype=np.uint32) << np.uint32(16)).view(np.float32)


def float32_to_bfloat16(values: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """Narrow float32 values to bfloat16 bit patterns, rounding to nearest, ties to even.

    NaNs are truncated (so a widened bfloat16 NaN returns to its exact pattern) and kept NaN when
    truncation would clear their mantissa.
    """
    bits = np.asarray(values, dtype=np.float32, order="C").view(np.uint32)
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1))) >> 16
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    if nan.any():
        truncated = bits[nan] >> 16
        rounded[nan] = truncated | np.where((truncated & 0x7F) == 0, 0x40, 0)
    return rounded.astype(np.uint16)


def round_to_dtype(values: npt.ArrayLike, dtype: int) -> npt.NDArray[np.float64]:
    """Values as a float DataType stores them (round to nearest, ties to even), as float64.

    Values beyond the type's range become ±Inf: callers test ``np.isfinite`` on the result.

    Raises
    ------
    DecodeError
        If ``dtype`` is not a float type.
    """
    info = dtypes.lookup(dtype)
    if not info.is_float:
        raise DecodeError(f"round_to_dtype takes a float dtype, got {info.name}")
    wide = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):  # out of range: ±Inf, as documented
        if info.enum == _BF16:  # to float32 first, then to 16 bits
            return bfloat16_to_float32(float32_to_bfloat16(wide.astype(np.float32))).astype(
                np.float64)
        return wide.astype(info.array).astype(np.float64)


def _stored_values(tensor: TensorProto, info: DTypeInfo) -> np.ndarray:
    """The typed field as a 1-D array of the storage dtype (strings as an object array)."""
    field = getattr(tensor, info.field)
    if info.enum == _STRING:
        out = np.empty(len(field), dtype=object)
        out[:] = list(field)
        return out
    if info.per_item == 2:
        pairs = np.array(field, dtype="<f4" if info.itemsize == 8 else "<f8")
        return pairs.view(info.storage)
    if info.field == "half_val":
        # half_val is int32 on the wire, each holding one 16-bit pattern.
        bits = np.array(field, dtype=np.int64).astype(np.uint16)
        return bits if info.enum == _BF16 else bits.view(info.storage)
    if info.storage.kind in "iu" and info.storage.itemsize < 8:
        # Narrow integers travel as int32 (int_val); wrap like TensorFlow's C++ static_cast.
        return np.array(field, dtype=np.int64).astype(info.storage)
    return np.array(field, dtype=info.storage)


def stored_values(tensor: TensorProto) -> np.ndarray:
    """The values a tensor stores, as a 1-D array, before any padding (bfloat16 widened to float32).

    For ``tensor_content`` this is every element; for a typed list only the listed values, so a
    splat or padded tensor of any declared size costs only what it stores.

    Raises
    ------
    DecodeError
        As for :func:`describe`.
    """
    info = dtypes.lookup(tensor.dtype)
    content = tensor.tensor_content
    if _describe(tensor, content).encoding == "content":
        flat = np.frombuffer(content, dtype=info.storage)
    else:
        flat = _stored_values(tensor, info)
    return bfloat16_to_float32(flat) if info.enum == _BF16 else flat


def to_array(tensor: TensorProto, content: bytes | memoryview | None = None) -> np.ndarray:
    """Decode a TensorProto to a numpy array as TensorFlow does.

    Non-empty ``tensor_content`` wins (little-endian); otherwise the typed value field, where a
    shorter list is padded with its last value and an empty one means zeros. bfloat16 comes back as
    exact float32, strings as an object array of bytes. Arrays decoded from ``tensor_content`` are
    read-only views of its bytes.

    Parameters
    ----------
    tensor : TensorProto
    content : bytes-like, optional
        As for :func:`describe`; decoding it makes a read-only view, not a copy.

    Returns
    -------
    ndarray of the tensor's shape

    Raises
    ------
    DecodeError
        As for :func:`describe`.
    """
    info = dtypes.lookup(tensor.dtype)
    if content is None:
        content = tensor.tensor_content
    meta = _describe(tensor, content)
    if meta.encoding == "content":
        flat = np.frombuffer(content, dtype=info.storage)
    elif meta.encoding in ("empty", "zeros"):
        flat = np.zeros(meta.n_elements, dtype=info.storage)
        if info.enum == _STRING:
            flat[:] = b""
    else:
        stored = _stored_values(tensor, info)
        flat = stored
        if meta.n_stored < meta.n_elements:
            flat = np.empty(meta.n_elements, dtype=info.storage)
            flat[:meta.n_stored] = stored
            flat[meta.n_stored:] = stored[-1]
    if info.enum == _BF16:
        flat = bfloat16_to_float32(flat)
    return flat.reshape(meta.shape)


def _resolve_dtype(array: np.ndarray, dtype: int | str | None) -> DTypeInfo:
    if dtype is None:
        return dtypes.for_numpy(array.dtype)
    if isinstance(dtype, str):
        matches = [row for row in dtypes.BY_ENUM.values() if row.name == dtype]
        if not matches:
            raise DecodeError(f"unknown or unsupported dtype name {dtype!r}")
        return matches[0]
    return dtypes.lookup(int(dtype))


def _content(values: np.ndarray, info: DTypeInfo) -> np.ndarray:
    """``values`` as a C-contiguous little-endian array of the storage dtype (no copy if it is)."""
    if info.enum == _BF16:
        return float32_to_bfloat16(values).astype("<u2", copy=False)
    return np.ascontiguousarray(values, dtype=info.storage)


def _payload(values: np.ndarray, info: DTypeInfo) -> bytes:
    """Little-endian C-order bytes of ``values`` in the storage dtype of ``info``."""
    return _content(values, info).tobytes()


def content_of(values: np.ndarray, dtype: int) -> memoryview:
    """The ``tensor_content`` bytes ``set_values`` would write, as a buffer (no copy if possible).

    Raises
    ------
    DecodeError
        For dtypes numpy cannot hold and for DT_STRING.
    """
    info = dtypes.lookup(dtype)
    if info.enum == _STRING:
        raise DecodeError("DT_STRING tensors have no tensor_content")
    return _content(np.asarray(values).reshape(-1), info).data.cast("B")


def set_placeholder(tensor: TensorProto, marker: bytes) -> None:
    """Put ``marker`` in ``tensor_content`` (typed field cleared) for a writer to swap out.

    The tensor is inconsistent until the real content replaces the marker: see
    ``pbfile.serialize_spliced``, which writes the bytes of :func:`content_of` in its place.
    """
    info = dtypes.lookup(tensor.dtype)
    tensor.ClearField(info.field)
    tensor.tensor_content = marker


def from_array(array: npt.ArrayLike, dtype: int | str | None = None) -> TensorProto:
    """Encode an array as a TensorProto (numeric types in ``tensor_content``, strings in ``string_val``).

    Parameters
    ----------
    array : array_like
        Values; cast to the storage type of ``dtype`` as numpy's ``astype`` does.
    dtype : int or str, optional
        A DataType number or name (``"DT_BFLOAT16"``); inferred from the array when omitted.

    Returns
    -------
    TensorProto

    Raises
    ------
    DecodeError
        If the dtype is unknown or has no numpy equivalent.
    """
    values = np.asarray(array)
    info = _resolve_dtype(values, dtype)
    tensor = TensorProto()
    tensor.dtype = info.enum  # type: ignore[assignment]  # the enum's numbers are plain ints
    for size in values.shape:
        tensor.tensor_shape.dim.add(size=size)
    if values.size == 0:
        return tensor
    if info.enum == _STRING:
        tensor.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in values.reshape(-1).tolist())
    else:
        tensor.tensor_content = _payload(values, info)
    return tensor


def set_values(tensor: TensorProto, values: np.ndarray) -> None:
    """Replace a numeric tensor's values in place, written as ``tensor_content``.

    dtype, shape and every other field stay as they are; the typed value field is cleared.

    Parameters
    ----------
    tensor : TensorProto
        Modified in place.
    values : ndarray
        As many elements as the tensor has (bfloat16 given as float32).

    Raises
    ------
    DecodeError
        For string tensors or a size mismatch.
    """
    meta = describe(tensor)
    info = dtypes.lookup(tensor.dtype)
    if info.enum == _STRING:
        raise DecodeError("set_values does not write DT_STRING tensors")
    if values.size != meta.n_elements:
        raise DecodeError(f"{values.size} values given for a tensor of {meta.n_elements} elements")
    tensor.ClearField(info.field)
    tensor.tensor_content = _payload(values, info) if values.size else b""
