"""The one table relating TensorFlow DataType, numpy dtype, TensorProto value field and item size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DecodeError

__all__ = ["DTypeInfo", "lookup", "for_numpy", "dtype_name", "FLOAT_TYPES", "BY_ENUM",
           "DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16", "DT_STRING"]


@dataclass(frozen=True)
class DTypeInfo:
    """How one TensorFlow DataType is stored in a TensorProto and seen in numpy.

    ``storage`` is the little-endian numpy dtype of one element as TensorFlow lays it out in
    ``tensor_content``; ``array`` is the dtype ``to_array`` returns (they differ only for bfloat16,
    stored as 16-bit patterns and returned widened to float32). ``field`` is the repeated value field
    used when ``tensor_content`` is empty; ``per_item`` is how many field entries make one element
    (2 for complex numbers, given as real/imaginary pairs).
    """

    enum: int
    name: str
    storage: np.dtype
    array: np.dtype
    field: str
    per_item: int = 1
    is_float: bool = False

    @property
    def itemsize(self) -> int:
        """Bytes per element in ``tensor_content``."""
        return self.storage.itemsize


def _row(enum: int, name: str, storage: str, field: str, *, array: str | None = None,
         per_item: int = 1, is_float: bool = False) -> DTypeInfo:
    return DTypeInfo(enum, name, np.dtype(storage), np.dtype(array or storage), field, per_item,
                     is_float)


# Enum numbers are TensorFlow's (tensorflow/core/framework/types.proto). The field for each type is
# the one TensorFlow's MakeNdarray reads (tensorflow/python/framework/tensor_util.py): the small
# integer types and the quantized types share int_val; half and bfloat16 share half_val. Quantized
# types come back as their plain integer equivalents. Types numpy cannot hold (float8, int4,
# resource, variant) are absent and decode to a clear error.
_TABLE = (
    _row(1, "DT_FLOAT", "<f4", "float_val", is_float=True),
    _row(2, "DT_DOUBLE", "<f8", "double_val", is_float=True),
    _row(3, "DT_INT32", "<i4", "int_val"),
    _row(4, "DT_UINT8", "u1", "int_val"),
    _row(5, "DT_INT16", "<i2", "int_val"),
    _row(6, "DT_INT8", "i1", "int_val"),
    _row(7, "DT_STRING", "O", "string_val"),
    _row(8, "DT_COMPLEX64", "<c8", "scomplex_val", per_item=2),
    _row(9, "DT_INT64", "<i8", "int64_val"),
    _row(10, "DT_BOOL", "?", "bool_val"),
    _row(11, "DT_QINT8", "i1", "int_val"),
    _row(12, "DT_QUINT8", "u1", "int_val"),
    _row(13, "DT_QINT32", "<i4", "int_val"),
    _row(14, "DT_BFLOAT16", "<u2", "half_val", array="<f4", is_float=True),
    _row(15, "DT_QINT16", "<i2", "int_val"),
    _row(16, "DT_QUINT16", "<u2", "int_val"),
    _row(17, "DT_UINT16", "<u2", "int_val"),
    _row(18, "DT_COMPLEX128", "<c16", "dcomplex_val", per_item=2),
    _row(19, "DT_HALF", "<f2", "half_val", is_float=True),
    _row(22, "DT_UINT32", "<u4", "uint32_val"),
    _row(23, "DT_UINT64", "<u8", "uint64_val"),
)

BY_ENUM: dict[int, DTypeInfo] = {row.enum: row for row in _TABLE}
_BY_NAME: dict[str, int] = {row.name: row.enum for row in _TABLE}
# The types code needs to name: bfloat16 (16-bit patterns in numpy) and strings (no content).
DT_FLOAT, DT_DOUBLE, DT_HALF = _BY_NAME["DT_FLOAT"], _BY_NAME["DT_DOUBLE"], _BY_NAME["DT_HALF"]
DT_BFLOAT16, DT_STRING = _BY_NAME["DT_BFLOAT16"], _BY_NAME["DT_STRING"]
FLOAT_TYPES: frozenset[int] = frozenset(row.enum for row in _TABLE if row.is_float)

# numpy dtype → the DataType from_array picks by default (the first row wins: int8 → DT_INT8,
# not DT_QINT8). Keyed by dtype "kind+size" so byte order does not matter.
_BY_NUMPY: dict[str, DTypeInfo] = {}
for _info in _TABLE:
    if _info.enum != DT_BFLOAT16:  # bfloat16 is only ever chosen explicitly
        _BY_NUMPY.setdefault(_info.storage.str.lstrip("<>|="), _info)

# Names TensorFlow gives to types we recognise but cannot represent in numpy.
_KNOWN_UNSUPPORTED = {20: "DT_RESOURCE", 21: "DT_VARIANT", 24: "DT_FLOAT8_E5M2",
                      25: "DT_FLOAT8_E4M3FN", 26: "DT_FLOAT8_E4M3FNUZ", 27: "DT_FLOAT8_E4M3B11FNUZ",
                      28: "DT_FLOAT8_E5M2FNUZ", 29: "DT_INT4", 30: "DT_UINT4", 31: "DT_INT2",
                      32: "DT_UINT2"}


# Reference types are their base type's number plus 100 (DT_FLOAT_REF = 101), one level only.
_REF_OFFSET = 100


def _base_name(enum: int) -> str | None:
    return BY_ENUM[enum].name if enum in BY_ENUM else _KNOWN_UNSUPPORTED.get(enum)


def dtype_name(enum: int) -> str:
    """TensorFlow's name for a DataType number, or ``DT_<number>`` when unknown."""
    name = _base_name(enum)
    if name is None and enum > _REF_OFFSET:
        base = _base_name(enum - _REF_OFFSET)
        name = None if base is None else base + "_REF"
    return name or f"DT_{enum}"


def lookup(enum: int) -> DTypeInfo:
    """The table row for a DataType number.

    Raises
    ------
    DecodeError
        If numpy cannot represent the type (reference types, resources, variants, float8, int4).
    """
    try:
        return BY_ENUM[enum]
    except KeyError:
        raise DecodeError(f"dtype {dtype_name(enum)} ({enum}) has no numpy equivalent") from None


def for_numpy(dtype: np.dtype) -> DTypeInfo:
    """The DataType ``from_array`` uses for a numpy dtype (bytes/str/object arrays → DT_STRING).

    Raises
    ------
    DecodeError
        If no TensorFlow type holds this numpy dtype.
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return BY_ENUM[DT_STRING]
    info = _BY_NUMPY.get(dtype.str.lstrip("<>|="))
    if info is None:
        raise DecodeError(f"numpy dtype {dtype} has no TensorFlow equivalent")
    return info
