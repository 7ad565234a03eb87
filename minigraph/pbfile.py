"""Reading and writing GraphDef files: binary or text, validated on read, atomic on write."""

from __future__ import annotations

import os
import stat
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

try:
    import fcntl
except ImportError:  # not on Windows: stale temp files are then not swept
    fcntl = None  # type: ignore[assignment]

from google.protobuf import message as pb_message
from google.protobuf import text_format

from .errors import GraphError, MinigraphError
from .graph import check_graph, escape
from .schema import GraphDef
from .wire import Chunk, lift_tensor_contents, splice

__all__ = ["AtomicFile", "read_bytes", "read_graph", "write_graph", "parse_graph", "parse_graph_lifted", "serialize_graph",
           "serialize_spliced", "looks_like_text",
           "write_atomic", "is_text_path", "MAX_PROTO_BYTES"]

PathLike = Union[str, "os.PathLike[str]"]

# protobuf refuses to parse or serialize a message of 2 GiB or more.
MAX_PROTO_BYTES = 2**31 - 1
_TEXT_SUFFIXES = (".pbtxt", ".pbtext", ".prototxt", ".txt")
_SNIFF_BYTES = 4096
_TEMP_MARK = ".minigraph-tmp-"  # in every temp file's name, so stale ones can be found
_TEMP_GRACE = 10.0  # seconds: a temp file younger than this may not be locked yet


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


def read_bytes(path: PathLike) -> bytes:
    """The bytes of a file, refused while reading once they pass protobuf's 2 GiB limit.

    A regular file's size is checked before reading; a pipe, device or other endless source is
    read in chunks and refused as soon as it passes the limit.

    Raises
    ------
    GraphError
        Naming the file: missing, a directory, unreadable, or over 2 GiB.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_PROTO_BYTES:
                raise GraphError(f"{name}: file has {info.st_size} bytes, over protobuf's 2 GiB "
                                 f"limit")
            data = handle.read(MAX_PROTO_BYTES + 1)
    except IsADirectoryError:
        raise GraphError(f"{name}: is a directory, not a GraphDef file") from None
    except OSError as exc:
        raise GraphError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_PROTO_BYTES:
        raise GraphError(f"{name}: input passes protobuf's 2 GiB limit (read stopped there)")
    return data


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
    data = read_bytes(path)
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


def _sweep_stale_temps(directory: Path) -> None:
    """Remove temp files that a killed writer left in ``directory``.

    A writer holds an exclusive lock on its temp file until it renames or deletes it, and the
    system drops the lock when the process dies (even by SIGKILL): a temp file whose lock can be
    taken, and which is older than the moment between its creation and locking, is abandoned.
    """
    if fcntl is None:
        return
    try:
        names = [name for name in os.listdir(directory) if _TEMP_MARK in name]
    except OSError:
        return
    for name in names:
        candidate = directory / name
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or time.time() - info.st_mtime < _TEMP_GRACE:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(candidate)
        except OSError:
            pass  # locked by a live writer, or already gone
        finally:
            os.close(fd)


class AtomicFile:
    """A file that appears at ``path`` only on :meth:`commit`, whole, or not at all.

    Bytes go to a locked temp file beside ``path``; :meth:`write` flushes them to disk and
    returns their CRC-32; the caller may then check ``temp_path`` before :meth:`commit` renames
    it over ``path``. Leaving the ``with`` block without committing removes the temp file, so
    ``path`` keeps its old content (or stays absent) whatever fails; temp files of killed
    writers are removed by the next write in the same directory.

    Raises
    ------
    GraphError
        If the directory is not writable or the disk fills.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.temp_path = Path()  # set on entering the block
        self._handle: Any = None
        self._committed = False

    def __enter__(self) -> AtomicFile:
        _sweep_stale_temps(self.path.parent)
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}{_TEMP_MARK}", suffix=".tmp",
                                        dir=self.path.parent)
        except OSError as exc:
            raise GraphError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.temp_path = Path(name)
        self._handle = os.fdopen(fd, "wb")
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the rename: see _sweep_stale_temps
        return self

    def write(self, data: bytes | Iterable[Chunk]) -> int:
        """Write all of ``data`` (bytes or chunks), flush it to disk; returns its CRC-32."""
        chunks = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
        crc = 0
        try:
            for chunk in chunks:
                self._handle.write(chunk)
                crc = zlib.crc32(chunk, crc)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise GraphError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return crc

    def commit(self) -> None:
        """Give the temp file the usual mode and rename it over ``path``."""
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.chmod(self.temp_path, 0o666 & ~umask)  # mkstemp makes 0600
            os.replace(self.temp_path, self.path)  # still locked: no sweeper takes it
        except OSError as exc:
            raise GraphError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._committed = True
        self._handle.close()

    def __exit__(self, *exc_info: object) -> None:
        self._handle.close()
        if not self._committed:
            _unlink_quietly(str(self.temp_path))


def write_atomic(path: PathLike, data: bytes | Iterable[Chunk]) -> int:
    """Write bytes (or a sequence of chunks) to ``path`` atomically; returns their CRC-32.

    See :class:`AtomicFile`.

    Raises
    ------
    GraphError
        If the directory is not writable or the disk fills; no partial file is left behind.
    """
    with AtomicFile(path) as out:
        crc = out.write(data)
        out.commit()
    return crc


def _unlink_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


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
