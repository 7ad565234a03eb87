"""Finding Const nodes in a GraphDef (main graph and library functions) and checking its structure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from .errors import DecodeError, GraphError
from .schema import GraphDef, NodeDef, TensorProto

__all__ = ["ConstRef", "CONST_OPS", "iter_consts", "check_graph", "quote", "escape"]

# HostConst is Const pinned to host memory; both carry their tensor in attr "value".
CONST_OPS = frozenset({"Const", "HostConst"})


@dataclass(frozen=True)
class ConstRef:
    """One Const node: ``name`` is ``NODE`` in the main graph and ``FUNCTION/NODE`` in the library."""

    name: str
    function: str | None
    node: NodeDef

    @property
    def place(self) -> str:
        """Where the node is, for messages: ``node 'X'`` or ``node 'X' in library function 'F'``."""
        return f"node {quote(self.node.name)}{_where(self.function)}"

    @property
    def tensor(self) -> TensorProto:
        """The node's ``value`` attr tensor (a live reference into the GraphDef)."""
        return self.node.attr["value"].tensor

    def locate(self, exc: DecodeError) -> DecodeError:
        """The same error, its message prefixed with where the node is (:attr:`place`)."""
        return DecodeError(f"{self.place}: {exc}")


def escape(text: str) -> str:
    """``text`` with control and other unprintable characters escaped as in :func:`quote`,
    without the quotes: for messages that embed text from the file (a parser's error)."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in str(text))


def quote(text: str) -> str:
    """A string from the file as messages show it: quoted, with control characters (newlines
    included) and other unprintable characters escaped as in Python's ``repr``, so one message
    stays one line whatever a node or function is called."""
    return repr(str(text))


def _where(function: str | None) -> str:
    return f" in library function {quote(function)}" if function is not None else ""


def _consts_of(nodes: Iterable[NodeDef], function: str | None) -> Iterator[ConstRef]:
    for node in nodes:
        if node.op not in CONST_OPS:
            continue
        # Indexing a protobuf map inserts the key, so test membership before reading it.
        if "value" not in node.attr or node.attr["value"].WhichOneof("value") != "tensor":
            raise GraphError(f"node {quote(node.name)}{_where(function)}: {quote(node.op)} has "
                             f"no tensor in attr 'value'")
        name = node.name if function is None else f"{function}/{node.name}"
        yield ConstRef(name, function, node)


def iter_consts(graph_def: GraphDef) -> Iterator[ConstRef]:
    """Yield every Const/HostConst node, main graph first, then library functions in file order.

    Raises
    ------
    GraphError
        If a Const node carries no tensor.
    """
    yield from _consts_of(graph_def.node, None)
    for function in graph_def.library.function:
        yield from _consts_of(function.node_def, function.signature.name)


def _check_nodes(nodes: Iterable[NodeDef], known: set[str], function: str | None) -> None:
    """Names present and unique, ops present, every input naming a node or argument."""
    names: set[str] = set()
    nodes = list(nodes)
    for node in nodes:
        if not node.name:
            raise GraphError(f"a node{_where(function)} has no name (op {quote(node.op)})")
        if not node.op:
            raise GraphError(f"node {quote(node.name)}{_where(function)} has no op")
        if node.name in names:
            raise GraphError(f"node name {quote(node.name)}{_where(function)} is used twice")
        names.add(node.name)
    targets = names | known
    for node in nodes:
        for edge in node.input:
            source = edge[1:] if edge.startswith("^") else edge
            if source.split(":", 1)[0] not in targets:
                raise GraphError(f"node {quote(node.name)}{_where(function)} has input "
                                 f"{quote(edge)}, which names no node")


def check_graph(graph_def: GraphDef) -> None:
    """Check that a parsed message is a plausible GraphDef (protobuf parses almost any bytes).

    Raises
    ------
    GraphError
        No nodes and no functions; a node without name or op; a duplicate name; an input naming
        no node (or, inside a function, no node and no argument).
    """
    functions = graph_def.library.function
    if not graph_def.node and not functions:
        raise GraphError("contains no nodes and no functions: not a GraphDef")
    _check_nodes(graph_def.node, set(), None)
    for function in functions:
        signature = function.signature
        if not signature.name:
            raise GraphError("a library function has no name")
        arguments = {arg.name for arg in signature.input_arg}
        _check_nodes(function.node_def, arguments, signature.name)
