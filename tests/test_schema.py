"""Schema tests: graphdef_pb2/ is what proto/generate.py makes, and proto/ matches TensorFlow's schema."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from minigraph import schema

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE_DIR = ROOT / "graphdef_pb2"
TF_DESCRIPTORS = Path(__file__).resolve().parent / "fixtures" / "tf_descriptors.json"
FIX = "run `python proto/generate.py` and commit graphdef_pb2/"

_Field = descriptor_pb2.FieldDescriptorProto
_UNPACKABLE = {_Field.TYPE_STRING, _Field.TYPE_BYTES, _Field.TYPE_MESSAGE, _Field.TYPE_GROUP}


def _load_generator() -> ModuleType:
    """Import proto/generate.py (not a package module) by path."""
    spec = importlib.util.spec_from_file_location("_minigraph_generate", PROTO_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read_python_files(directory: Path) -> dict[str, bytes]:
    """Return the bytes of every .py and .pyi file in directory, by name."""
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.suffix in (".py", ".pyi")}


def _our_modules() -> dict[str, ModuleType]:
    """Import the generated module of every proto/*.proto, keyed by .proto base name."""
    return {
        proto.name: importlib.import_module(f"graphdef_pb2.{proto.stem}_pb2")
        for proto in sorted(PROTO_DIR.glob("*.proto"))
    }


# The three helpers below mirror tests/fixtures/dump_descriptors.py, which runs
# under TensorFlow and so cannot be imported here; both build the same dict.
def _is_packed(field: descriptor_pb2.FieldDescriptorProto, syntax: str) -> bool:
    if field.label != _Field.LABEL_REPEATED or field.type in _UNPACKABLE:
        return False
    if field.options.HasField("packed"):
        return field.options.packed
    return syntax == "proto3"


def _describe_message(message: descriptor_pb2.DescriptorProto, syntax: str) -> dict[str, Any]:
    oneofs = [oneof.name for oneof in message.oneof_decl]
    fields = [
        {
            "name": field.name,
            "number": field.number,
            "type": _Field.Type.Name(field.type),
            "label": _Field.Label.Name(field.label),
            "type_name": field.type_name,
            "oneof": oneofs[field.oneof_index] if field.HasField("oneof_index") else None,
            "packed": _is_packed(field, syntax),
        }
        for field in sorted(message.field, key=lambda field: field.number)
    ]
    return {
        "fields": fields,
        "oneofs": sorted(oneofs),
        "map_entry": message.options.map_entry,
        "messages": {nested.name: _describe_message(nested, syntax) for nested in message.nested_type},
        "enums": {enum.name: {v.name: v.number for v in enum.value} for enum in message.enum_type},
    }


def _describe_file(module: ModuleType) -> dict[str, Any]:
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)
    syntax = proto.syntax or "proto2"
    return {
        "package": proto.package,
        "syntax": syntax,
        "dependencies": sorted(proto.dependency),
        "messages": {message.name: _describe_message(message, syntax) for message in proto.message_type},
        "enums": {enum.name: {v.name: v.number for v in enum.value} for enum in proto.enum_type},
    }


def _strip(type_name: str, package: str) -> str:
    """'.tensorflow.AttrValue' -> 'AttrValue' (a name from another package is kept whole)."""
    prefix = f".{package}."
    return type_name[len(prefix):] if type_name.startswith(prefix) else type_name


def _join(scope: str, name: str) -> str:
    """Name a nested item: 'graph.proto' + 'GraphDef' -> 'graph.proto GraphDef', then '.node'."""
    return f"{scope} {name}" if scope.endswith(".proto") else f"{scope}.{name}"


def _differs(where: str, key: str, theirs: Any, ours: Any) -> list[str]:
    """Report one attribute that differs, with both values."""
    return [] if theirs == ours else [f"{where}: {key} is {theirs!r} in TensorFlow, {ours!r} in ours"]


def _one_sided(where: str, what: str, theirs: dict, ours: dict) -> list[str]:
    """Report names present on one side only."""
    missing = sorted(theirs.keys() - ours.keys())
    extra = sorted(ours.keys() - theirs.keys())
    return [f"{where}: {what} {name} is in TensorFlow, missing from ours" for name in missing] + [
        f"{where}: {what} {name} is ours only, not in TensorFlow" for name in extra
    ]


def _compare_enums(where: str, theirs: dict, ours: dict) -> list[str]:
    problems = _one_sided(where, "enum", theirs, ours)
    for enum in sorted(theirs.keys() & ours.keys()):
        path = _join(where, enum)
        problems += _one_sided(path, "value", theirs[enum], ours[enum])
        for value in sorted(theirs[enum].keys() & ours[enum].keys()):
            problems += _differs(f"{path}.{value}", "number", theirs[enum][value], ours[enum][value])
    return problems


def _compare_messages(where: str, theirs: dict, ours: dict, packages: tuple[str, str]) -> list[str]:
    """Compare {name: message} dicts recursively; packages are TensorFlow's and ours."""
    problems = _one_sided(where, "message", theirs, ours)
    for name in sorted(theirs.keys() & ours.keys()):
        tf_message, our_message, path = theirs[name], ours[name], _join(where, name)
        for key in ("map_entry", "oneofs"):
            problems += _differs(path, key, tf_message[key], our_message[key])
        tf_fields = {field["name"]: field for field in tf_message["fields"]}
        our_fields = {field["name"]: field for field in our_message["fields"]}
        problems += _one_sided(path, "field", tf_fields, our_fields)
        for field in sorted(tf_fields.keys() & our_fields.keys()):
            tf_field, our_field = tf_fields[field], our_fields[field]
            for key in ("number", "type", "label", "oneof", "packed"):
                problems += _differs(f"{path}.{field}", key, tf_field[key], our_field[key])
            problems += _differs(f"{path}.{field}", "type_name", _strip(tf_field["type_name"], packages[0]),
                                 _strip(our_field["type_name"], packages[1]))
        problems += _compare_messages(path, tf_message["messages"], our_message["messages"], packages)
        problems += _compare_enums(path, tf_message["enums"], our_message["enums"])
    return problems


def test_generated_code_is_in_sync_with_proto(tmp_path: Path) -> None:
    generator = _load_generator()
    pin, found = generator.GRPCIO_TOOLS_VERSION, generator.installed_grpcio_tools()
    if found != pin or importlib.util.find_spec("grpc_tools") is None:
        pytest.skip(f"needs grpcio-tools=={pin} importable (found {found or 'none'})")
    generator.generate(tmp_path)
    fresh, committed = _read_python_files(tmp_path), _read_python_files(PACKAGE_DIR)
    problems = [f"graphdef_pb2/{name} is missing" for name in sorted(fresh.keys() - committed.keys())]
    problems += [f"graphdef_pb2/{name} has no source" for name in sorted(committed.keys() - fresh.keys())]
    problems += [
        f"graphdef_pb2/{name} differs from what proto/ generates"
        for name in sorted(fresh.keys() & committed.keys())
        if fresh[name] != committed[name]
    ]
    if problems:
        header = f"graphdef_pb2/ is out of date with proto/ ({FIX}):\n"
        pytest.fail(header + "\n".join(problems), pytrace=False)


def test_schema_matches_tensorflow() -> None:
    dump = json.loads(TF_DESCRIPTORS.read_text(encoding="utf-8"))
    theirs = {Path(name).name: described for name, described in dump["files"].items()}
    assert len(theirs) == len(dump["files"]), "two files of TensorFlow's closure share a base name"
    ours = {name: _describe_file(module) for name, module in _our_modules().items()}
    problems = _one_sided("proto/", "file", theirs, ours)
    for name in sorted(theirs.keys() & ours.keys()):
        tf_file, our_file = theirs[name], ours[name]
        problems += _differs(name, "syntax", tf_file["syntax"], our_file["syntax"])
        problems += _differs(name, "import list", sorted(Path(dep).name for dep in tf_file["dependencies"]),
                             sorted(Path(dep).name for dep in our_file["dependencies"]))
        packages = (tf_file["package"], our_file["package"])
        problems += _compare_messages(name, tf_file["messages"], our_file["messages"], packages)
        problems += _compare_enums(name, tf_file["enums"], our_file["enums"])
    if problems:
        version = dump["tensorflow_version"]
        header = f"proto/ differs from TensorFlow {version}; fix proto/*.proto, then {FIX}:\n"
        pytest.fail(header + "\n".join(problems), pytrace=False)


def test_schema_can_coexist_with_tensorflow() -> None:
    # Protobuf's descriptor pool is process-global: a file or symbol named like
    # TensorFlow's would make `import tensorflow` next to minigraph fail.
    problems = []
    for name, module in _our_modules().items():
        file = module.DESCRIPTOR
        if file.package.split(".")[0] == "tensorflow":
            problems.append(f"{name}: package is {file.package!r}")
        if not file.name.startswith("graphdef_pb2/"):
            problems.append(f"{name}: file name is {file.name!r}, expected 'graphdef_pb2/{name}'")
    if problems:
        pytest.fail("our schema would clash with TensorFlow's:\n" + "\n".join(problems), pytrace=False)


def test_schema_module_exports_our_classes() -> None:
    for name in schema.__all__:
        descriptor = getattr(schema, name).DESCRIPTOR
        assert descriptor.name == name, f"minigraph.schema.{name} is {descriptor.full_name}"
        assert descriptor.file.name.startswith("graphdef_pb2/"), f"{name} is from {descriptor.file.name}"
    # Numbers from TensorFlow's types.proto.
    assert (schema.DataType.DT_FLOAT, schema.DataType.DT_BFLOAT16, schema.DataType.DT_HALF) == (1, 14, 19)


@pytest.mark.tensorflow
def test_savedmodel_classes_load_beside_tensorflow() -> None:
    # Both sets of classes in one process, and TensorFlow's bytes parse into ours field by field.
    from tensorflow.core.protobuf import saved_model_pb2, tensor_bundle_pb2

    theirs = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    meta = theirs.meta_graphs.add()
    meta.meta_info_def.tags.append("serve")
    meta.object_graph_def.nodes.add().variable.name = "kernel"
    ours = schema.SavedModel.FromString(theirs.SerializeToString())
    assert list(ours.meta_graphs[0].meta_info_def.tags) == ["serve"]
    assert ours.meta_graphs[0].object_graph_def.nodes[0].variable.name == "kernel"
    entry = tensor_bundle_pb2.BundleEntryProto(shard_id=2, offset=40, size=12, crc32c=0xDEADBEEF)
    assert schema.BundleEntryProto.FromString(entry.SerializeToString()).crc32c == 0xDEADBEEF
