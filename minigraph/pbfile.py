"""Reading and writing GraphDef files: binary or text, validated on read, atomic on write."""

from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path
from typing import Iterable, Mapping, Union

from google.protobuf import message as pb_message
from google.protobuf import text_format

from .errors import GraphError, MinigraphError
from .graph import check_graph, escape
from .schema import GraphDef
from .wire import Chunk, lift_tensor_contents, splice

__all__ = ["read_graph", "write_graph", "parse_graph", "parse_graph_lifted", "serialize_graph",
           "serialize_spliced", "looks_like_text",
           "write_atomic", "is_text_path", "MAX_PROTO_BYTES"]

PathLike = Union[str, "os.PathLike[str]"]

# protobuf refuses to parse or serialize a message of 2 GiB or more.
MAX_PROTO_BYTES = 2**31 - 1
_TEXT_SUFFIXES = (".pbtxt", ".pbtext", ".prototxt", ".txt")
_SNIFF_BYTES = 4096


def is_text_path(path: PathLike) -> bool:
    """True when the file name says text format (``.pbtxt``, ``.pbtext``, ``.prototxt``, ``.txt``)."""
    name = os.fspath(path).lower()
    if name.endswith(".min"):
        name = name[:-4]
    return name.endswith(_TEXT_SUFFIXES)


def looks_like_text(data: bytes) -> bool:
    """True for text-format bytes: a binary GraphDef starts with control bytes (tags, lengths); text format has none."""
    head = data[:_SNIFF_BYTES]
    if any(byte < 0x20 and byte not in b"\t\n\r" for byte in head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a character cut by the sniff window
    return True


def parse_graph(data: bytes, *, text: bool | None = None) -> GraphDef:
    """Parse and check a GraphDef from bytes (``text=None`` sniffs the format).

    Raises
    ------
    GraphError
        If the bytes are empty, not a GraphDef, or a GraphDef that fails :func:`check_graph`.
    """
    if not data:
        raise GraphError("file is empty")
    if len(data) > MAX_PROTO_BYTES:
        raise GraphError(f"file has {len(data)} bytes, over protobuf's 2 GiB limit")
    if text is None:
        text = looks_like_text(data)
    graph_def = GraphDef()
    try:
        if text:
            text_format.Parse(data.decode("utf-8"), graph_def)
        else:
            graph_def.ParseFromString(data)
    except UnicodeDecodeError as exc:
        raise GraphError(f"text GraphDef is not UTF-8 (byte {exc.start})") from None
    except text_format.ParseError as exc:
        raise GraphError(f"not a text GraphDef: {escape(str(exc))}") from None
    except (pb_message.DecodeError, RuntimeError, ValueError) as exc:
        raise GraphError(f"not a binary GraphDef (protobuf: {escape(str(exc))}); truncated or "
                         f"another format?") from None
    check_graph(graph_def)
    return graph_def


def parse_graph_lifted(data: bytes) -> tuple[GraphDef, dict[bytes, memoryview]]:
    """Parse a binary GraphDef leaving its large Const payloads in ``data``.

    Each such tensor's ``tensor_content`` holds a marker instead, which the returned dict maps
    to a view of the payload in ``data`` (keep ``data`` alive while they are used). Neither the
    parsed message nor decoding copies the payloads; write back with :func:`serialize_spliced`.

    Raises
    ------
    GraphError
        As :func:`parse_graph`.
    """
    if len(data) > MAX_PROTO_BYTES:
        raise GraphError(f"file has {len(data)} bytes, over protobuf's 2 GiB limit")
    try:
        skeleton, lifted = lift_tensor_contents(data)
    except GraphError:
        return parse_graph(data, text=False), {}  # the plain parse says what is wrong
    graph_def = parse_graph(skeleton, text=False)
    if lifted:
        # Protobuf keeps only the last of a repeated singular field (tensor_content twice, two
        # "value" entries of one attr map, a oneof set twice): a marker in a dropped copy names
        # no payload of the parsed graph. The skeleton is small, so checking costs little.
        kept = graph_def.SerializeToString()
        lifted = {marker: view for marker, view in lifted.items() if marker in kept}
    return graph_def, lifted


def read_graph(path: PathLike) -> GraphDef:
    """Read a GraphDef file, binary or text (by extension, else by sniffing the content).

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    GraphDef

    Raises
    ------
    GraphError
        Naming the file: unreadable, empty, over 2 GiB, unparsable, or not a well-formed GraphDef.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise GraphError(f"{os.fspath(path)}: cannot read: {exc.strerror or exc}") from None
    try:
        return parse_graph(data, text=True if is_text_path(path) else None)
    except MinigraphError as exc:
        raise GraphError(f"{os.fspath(path)}: {exc}") from None


def serialize_graph(graph_def: GraphDef, *, text: bool = False) -> bytes:
    """Deterministic bytes of a GraphDef (map entries sorted), binary or text.

    Raises
    ------
    GraphError
        If the binary form would reach protobuf's 2 GiB limit.
    """
    if text:
        return text_format.MessageToString(graph_def).encode("utf-8")
    size = graph_def.ByteSize()
    if size > MAX_PROTO_BYTES:
        raise GraphError(f"graph would serialize to {size} bytes, over protobuf's 2 GiB limit")
    return graph_def.SerializeToString(deterministic=True)


def write_atomic(path: PathLike, data: bytes | Iterable[Chunk]) -> int:
    """Write bytes (or a sequence of chunks) to ``path`` atomically: a temp file beside it, fsync,
    then a rename over it. Returns the CRC-32 of what was written.

    Raises
    ------
    GraphError
        If the directory is not writable or the disk fills; no partial file is left behind.
    """
    target = Path(path)
    chunks = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                        dir=target.parent)
    except OSError as exc:
        raise GraphError(f"{target}: cannot write: {exc.strerror or exc}") from None
    crc = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                crc = zlib.crc32(chunk, crc)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_name, target)
    except OSError as exc:
        os.unlink(tmp_name)
        raise GraphError(f"{target}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        os.unlink(tmp_name)
        raise
    return crc


def serialize_spliced(graph_def: GraphDef, payloads: Mapping[bytes, Chunk]) -> list[Chunk]:
    """Deterministic binary serialization in chunks, each marker payload swapped for its bytes.

    Every key of ``payloads`` must be the whole ``bytes`` value of exactly one field somewhere in
    ``graph_def`` (a placeholder the caller put there). The result equals the serialization of
    the graph with those fields holding the payloads instead, without building that graph or its
    bytes: large payloads are written straight from their buffers.

    Raises
    ------
    GraphError
        If the result would reach protobuf's 2 GiB limit or a marker is not found once.
    """
    buf = serialize_graph(graph_def)
    hits = []
    for marker in payloads:
        offset = buf.find(marker)
        if offset < 0 or buf.find(marker, offset + 1) >= 0:
            raise GraphError("internal: a splice marker is missing or not unique")
        hits.append((offset, marker))
    chunks, total = splice(buf, 0, len(buf), sorted(hits), payloads)
    if total > MAX_PROTO_BYTES:
        raise GraphError(f"graph would serialize to {total} bytes, over protobuf's 2 GiB limit")
    return chunks


def write_graph(graph_def: GraphDef, path: PathLike, *, text: bool | None = None) -> None:
    """Write a GraphDef atomically; text format when ``text`` is true or the name says so.

    Raises
    ------
    GraphError
        Over 2 GiB, or the file cannot be written.
    """
    if text is None:
        text = is_text_path(path)
    try:
        data = serialize_graph(graph_def, text=text)
    except MinigraphError as exc:
        raise GraphError(f"{os.fspath(path)}: {exc}") from None
    write_atomic(path, data)
