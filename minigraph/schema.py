"""TensorFlow's GraphDef message classes and DataType enum, from our generated graphdef_pb2 package."""

from __future__ import annotations

from graphdef_pb2.attr_value_pb2 import AttrValue, NameAttrList
from graphdef_pb2.function_pb2 import FunctionDef, FunctionDefLibrary
from graphdef_pb2.graph_pb2 import GraphDef
from graphdef_pb2.node_def_pb2 import NodeDef
from graphdef_pb2.op_def_pb2 import OpDef
from graphdef_pb2.tensor_pb2 import TensorProto
from graphdef_pb2.tensor_shape_pb2 import TensorShapeProto
from graphdef_pb2.types_pb2 import DataType
from graphdef_pb2.versions_pb2 import VersionDef

__all__ = [
    "AttrValue",
    "DataType",
    "FunctionDef",
    "FunctionDefLibrary",
    "GraphDef",
    "NameAttrList",
    "NodeDef",
    "OpDef",
    "TensorProto",
    "TensorShapeProto",
    "VersionDef",
]
