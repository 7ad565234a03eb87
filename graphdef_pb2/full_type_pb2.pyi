from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
TFT_ANY: FullTypeId
TFT_ARRAY: FullTypeId
TFT_BFLOAT16: FullTypeId
TFT_BOOL: FullTypeId
TFT_CALLABLE: FullTypeId
TFT_COMPLEX128: FullTypeId
TFT_COMPLEX64: FullTypeId
TFT_DATASET: FullTypeId
TFT_DOUBLE: FullTypeId
TFT_ENCODED: FullTypeId
TFT_FLOAT: FullTypeId
TFT_FOR_EACH: FullTypeId
TFT_HALF: FullTypeId
TFT_INT16: FullTypeId
TFT_INT32: FullTypeId
TFT_INT64: FullTypeId
TFT_INT8: FullTypeId
TFT_ITERATOR: FullTypeId
TFT_LEGACY_VARIANT: FullTypeId
TFT_LITERAL: FullTypeId
TFT_MUTEX_LOCK: FullTypeId
TFT_NAMED: FullTypeId
TFT_OPTIONAL: FullTypeId
TFT_PRODUCT: FullTypeId
TFT_RAGGED: FullTypeId
TFT_SHAPE_TENSOR: FullTypeId
TFT_STRING: FullTypeId
TFT_TENSOR: FullTypeId
TFT_UINT16: FullTypeId
TFT_UINT32: FullTypeId
TFT_UINT64: FullTypeId
TFT_UINT8: FullTypeId
TFT_UNSET: FullTypeId
TFT_VAR: FullTypeId

class FullTypeDef(_message.Message):
    __slots__ = ["args", "i", "s", "type_id"]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    I_FIELD_NUMBER: _ClassVar[int]
    S_FIELD_NUMBER: _ClassVar[int]
    TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    args: _containers.RepeatedCompositeFieldContainer[FullTypeDef]
    i: int
    s: str
    type_id: FullTypeId
    def __init__(self, type_id: _Optional[_Union[FullTypeId, str]] = ..., args: _Optional[_Iterable[_Union[FullTypeDef, _Mapping]]] = ..., s: _Optional[str] = ..., i: _Optional[int] = ...) -> None: ...

class FullTypeId(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
