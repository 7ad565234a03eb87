"""Who is who in a TF2 SavedModel: checkpoint keys, object paths and variable names."""

from __future__ import annotations

from collections import deque
from typing import Any

from .bundle import Bundle
from .errors import SavedModelError
from .schema import SavedModel, TrackableObjectGraph

__all__ = ["OBJECT_GRAPH_KEY", "variable_names"]

# The bundle key under which TF2 stores the checkpoint's object graph (a DT_STRING scalar):
# tensorflow/python/checkpoint/checkpoint.py. It is metadata, never a variable.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _object_paths(graph: Any) -> dict[int, str]:
    """Node id -> path of child names from the root (node 0), the first path found."""
    if not graph.nodes:
        return {}
    paths, pending = {0: ""}, deque([0])
    while pending:
        node = pending.popleft()
        for child in graph.nodes[node].children:
            if child.node_id not in paths and 0 <= child.node_id < len(graph.nodes):
                paths[child.node_id] = f"{paths[node]}/{child.local_name}".lstrip("/")
                pending.append(child.node_id)
    return paths


def _checkpoint_graph(bundle: Bundle) -> TrackableObjectGraph | None:
    """The object graph stored in the bundle, or None when it has none (a TF1 checkpoint)."""
    if OBJECT_GRAPH_KEY not in bundle.entries:
        return None
    blob = bytes(bundle.data(OBJECT_GRAPH_KEY))
    # A string scalar: varint length, 4-byte length checksum, then the bytes (tensor_bundle.cc).
    pos = 0
    while pos < len(blob) and blob[pos] & 0x80:
        pos += 1
    try:
        return TrackableObjectGraph.FromString(blob[pos + 5:])
    except Exception:
        raise SavedModelError(f"{bundle.prefix}.index: {OBJECT_GRAPH_KEY} is not an object "
                              f"graph") from None


def variable_names(saved_model: SavedModel, bundle: Bundle) -> dict[str, tuple[str, ...]]:
    """Checkpoint key -> the other names a whitelist may use: its object path (``dense/kernel``
    as a path of attribute names from the root object) and, when the SavedModel's object graph
    has a variable at that path, the variable's name (``sequential/dense1/kernel``)."""
    checkpoint = _checkpoint_graph(bundle)
    if checkpoint is None:
        return {}
    saved = saved_model.meta_graphs[0].object_graph_def
    by_path: dict[str, str] = {}
    if saved.nodes:
        for node_id, path in _object_paths(saved).items():
            if saved.nodes[node_id].WhichOneof("kind") == "variable":
                by_path[path] = saved.nodes[node_id].variable.name
    names: dict[str, tuple[str, ...]] = {}
    for node_id, path in _object_paths(checkpoint).items():
        for attribute in checkpoint.nodes[node_id].attributes:
            extra = by_path.get(path)
            names[attribute.checkpoint_key] = (path,) if extra is None else (path, extra)
    return names
