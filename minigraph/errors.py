"""Exceptions raised by minigraph for expected failures (bad input, unsupported content)."""

from __future__ import annotations

__all__ = ["MinigraphError", "DecodeError", "GraphError", "ClusteringError", "BundleError",
           "SavedModelError", "PlotError"]


class MinigraphError(ValueError):
    """Base class: an expected failure whose message is one sentence naming what and where."""


class DecodeError(MinigraphError):
    """A TensorProto is inconsistent or of a dtype minigraph cannot represent."""


class GraphError(MinigraphError):
    """A file is not a readable, well-formed GraphDef, or cannot be written as one."""


class ClusteringError(MinigraphError):
    """Clustering was asked for with invalid parameters or values."""


class BundleError(MinigraphError):
    """A tensor bundle (``variables.index`` and its data shards) is corrupt or not supported."""


class SavedModelError(MinigraphError):
    """A directory is not a SavedModel minigraph can read, or its output cannot be written."""


class PlotError(MinigraphError):
    """A figure cannot be drawn: matplotlib is missing, or the output or tensors asked are wrong."""
