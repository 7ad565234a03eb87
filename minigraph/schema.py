"""TensorFlow's GraphDef, SavedModel and tensor-bundle message classes, from our generated graphdef_pb2 package."""

from __future__ import annotations

from graphdef_pb2.attr_value_pb2 import AttrValue, NameAttrList
from graphdef_pb2.fingerprint_pb2 import FingerprintDef
from graphdef_pb2.function_pb2 import FunctionDef, FunctionDefLibrary
from graphdef_pb2.graph_pb2 import GraphDef
from graphdef_pb2.meta_graph_pb2 import AssetFileDef, MetaGraphDef, SignatureDef
from graphdef_pb2.node_def_pb2 import NodeDef
from graphdef_pb2.op_def_pb2 import OpDef
from graphdef_pb2.saved_model_pb2 import SavedModel
from graphdef_pb2.saved_object_graph_pb2 import SavedObjectGraph
from graphdef_pb2.tensor_bundle_pb2 import BundleEntryProto, BundleHeaderProto
from graphdef_pb2.tensor_pb2 import TensorProto
from graphdef_pb2.tensor_shape_pb2 import TensorShapeProto
from graphdef_pb2.trackable_object_graph_pb2 import TrackableObjectGraph
from graphdef_pb2.types_pb2 import DataType
from graphdef_pb2.versions_pb2 import VersionDef

__all__ = [
    "AssetFileDef",
    "AttrValue",
    "BundleEntryProto",
    "BundleHeaderProto",
    "DataType",
    "FingerprintDef",
    "FunctionDef",
    "FunctionDefLibrary",
    "GraphDef",
    "MetaGraphDef",
    "NameAttrList",
    "NodeDef",
    "OpDef",
    "SavedModel",
    "SavedObjectGraph",
    "SignatureDef",
    "TensorProto",
    "TensorShapeProto",
    "TrackableObjectGraph",
    "VersionDef",
]
