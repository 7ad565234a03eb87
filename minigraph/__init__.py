"""minigraph: shrink frozen TensorFlow GraphDefs by k-means weight sharing, without TensorFlow."""

from ._version import __version__
from .codec import describe, from_array, to_array
from .compress import Options, compress, converge_weights
from .engine import Clustering, cluster
from .errors import ClusteringError, DecodeError, GraphError, MinigraphError
from .files import compress_file, expand_file, inspect_file
from .palette import PaletteInfo, expand, find_palettes, palettize
from .pbfile import read_graph, write_graph
from .report import Report, TensorReport

__all__ = [
    "__version__",
    "MinigraphError", "DecodeError", "GraphError", "ClusteringError",
    "to_array", "from_array", "describe",
    "read_graph", "write_graph",
    "cluster", "Clustering",
    "compress", "converge_weights", "Options", "Report", "TensorReport",
    "compress_file", "inspect_file", "expand_file",
    "palettize", "expand", "find_palettes", "PaletteInfo",
]
