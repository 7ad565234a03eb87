"""One input path to one output path: read, plan, write, verify (the command line's engine room)."""

from __future__ import annotations

import os
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import codec, pbfile
from .compress import (Change, Options, Progress, as_changes, palettize_changes,
                       plan_compression)
from .errors import GraphError, MinigraphError
from .palette import expand
from .report import inspect_dict
from .savedmodel import compress_savedmodel
from .savedmodel_summary import inspect_savedmodel
from .schema import GraphDef
from .summary import summarize_graph
from .wire import Chunk, new_marker

__all__ = ["default_output", "compress_file", "expand_file", "inspect_file",
           "serialize_compressed", "verify_output"]

def default_output(path: str | os.PathLike[str]) -> Path:
    """Where ``minigraph FILE`` writes by default: ``FILE.min`` beside ``FILE`` (for a
    SavedModel directory ``DIR``, the directory ``DIR.min``)."""
    return Path(os.fspath(path).rstrip(os.sep) + ".min")


def _check_paths(path: str, out: Path, force: bool) -> None:
    """Refuse a missing input, the input as output, and an existing output without ``force``."""
    try:
        source = os.stat(path)
    except OSError as exc:
        raise GraphError(f"cannot read: {exc.strerror or exc}") from None
    try:
        target = os.stat(out)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise GraphError(f"cannot write {out}: {exc.strerror or exc}") from None
    if (target.st_dev, target.st_ino) == (source.st_dev, source.st_ino):
        raise GraphError(f"output {out} is the input file itself; choose another")
    if not force:
        raise GraphError(f"output {out} already exists (use --force to replace it)")


def _gzip_size(data: bytes | memoryview) -> int:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container, like gzip -9
    return len(compressor.compress(data)) + len(compressor.flush())


def _gzip_file(path: Path) -> int:
    return _gzip_size(path.read_bytes())


def _in_background(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """Run fn(*args) in a thread (zlib releases the GIL); calling the result waits for its value."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(fn(*args)), daemon=True)
    thread.start()

    def result() -> Any:
        thread.join()
        return box[0]
    return result


def _content_crcs(graph_def: GraphDef, payloads: Mapping[bytes, Chunk]) -> list[int]:
    """CRC-32 of every ``value`` attr tensor's tensor_content (every Const's, and any other
    node's that carries one), in graph order, markers resolved; then clears those contents so
    that the rest of the graph can be digested on its own."""
    crcs = []
    scopes = [graph_def.node] + [function.node_def for function in graph_def.library.function]
    for nodes in scopes:
        for node in nodes:
            if "value" not in node.attr or node.attr["value"].WhichOneof("value") != "tensor":
                continue
            tensor = node.attr["value"].tensor
            content = tensor.tensor_content
            crcs.append(zlib.crc32(payloads.get(content, content)))
            tensor.ClearField("tensor_content")
    return crcs


def _skeleton_crc(graph_def: GraphDef) -> int:
    """CRC-32 of the deterministic serialization (Const contents already cleared)."""
    return zlib.crc32(graph_def.SerializeToString(deterministic=True))


def serialize_compressed(graph_def: GraphDef, changes: Sequence[Change], *, text: bool = False,
                         lifted: Mapping[bytes, memoryview] | None = None
                         ) -> tuple[list[Chunk], Callable[[], tuple[int, list[int]]]]:
    """The output's bytes, as chunks, and a function giving what verification expects.

    Binary output never holds the new and old values together in one protobuf message: each
    changed tensor gets a small placeholder and its values are streamed into the file in its
    place (the bytes equal those of applying the changes and serializing); tensors ``lifted``
    out at reading go back in from their views. The second value, called once the chunks are
    written, returns (CRC-32 of the graph without Const contents, CRC-32 of each Const's
    content) and consumes ``graph_def``, which is the caller's to discard afterwards. Text
    output takes a graph read without lifting.
    """
    if text:
        if lifted:
            raise ValueError("text output needs a graph parsed without lifted contents")
        for ref, values in changes:
            codec.set_values(ref.tensor, values)
        payloads: dict[bytes, Any] = {}
        chunks: list[Chunk] = [pbfile.serialize_graph(graph_def, text=True)]
    else:
        payloads = dict(lifted or {})
        for ref, values in changes:
            marker = ref.tensor.tensor_content
            if marker not in payloads:
                marker = new_marker()
                codec.set_placeholder(ref.tensor, marker)
            payloads[marker] = codec.content_of(values, ref.tensor.dtype)
        chunks = pbfile.serialize_spliced(graph_def, payloads)

    def expected() -> tuple[int, list[int]]:
        crcs = _content_crcs(graph_def, payloads)
        payloads.clear()
        return _skeleton_crc(graph_def), crcs
    return chunks, expected


def verify_output(path: Path, crc: int, expected: tuple[int, list[int]], *, text: bool) -> None:
    """Re-read a written file and check it holds exactly what was meant.

    The bytes must have the CRC-32 written; they must parse as a GraphDef; every Const must hold
    exactly the intended content (unchanged ones their old bytes, clustered ones their new
    values); and everything else must equal the intended graph (nodes, attrs, library, versions,
    unknown fields), compared through CRC-32 digests so neither graph is kept in memory twice.

    Raises
    ------
    GraphError
        Naming the file and what differs.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GraphError(f"cannot re-read {path} for verification: {exc.strerror}") from None
    if zlib.crc32(data) != crc:
        raise GraphError("verification failed: the file read back differs from what was written")
    lifted: dict[bytes, memoryview] = {}
    try:
        if text:
            graph_def = pbfile.parse_graph(data, text=True)
        else:
            graph_def, lifted = pbfile.parse_graph_lifted(data)
    except MinigraphError as exc:
        raise GraphError(f"verification failed: the output does not re-read: {exc}") from None
    skeleton, contents = expected
    if _content_crcs(graph_def, lifted) != contents:
        raise GraphError("verification failed: a Const's values differ from the intended ones")
    if _skeleton_crc(graph_def) != skeleton:
        raise GraphError("verification failed: the graph differs from the intended one "
                         "outside the Const values")


def _read_for_compression(path: str, data: bytes, text_out: bool
                          ) -> tuple[GraphDef, dict[bytes, memoryview]]:
    """Parse the input; large binary payloads stay in ``data`` (decoded in place, not copied)."""
    text_in = pbfile.is_text_path(path) or pbfile.looks_like_text(data)
    if text_in or text_out:
        return pbfile.parse_graph(data, text=text_in), {}
    return pbfile.parse_graph_lifted(data)


def compress_file(path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, *,
                  options: Options | None = None, force: bool = False, verify: bool = True,
                  gzip: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Compress one GraphDef file into another, atomically.

    Parameters
    ----------
    path : path of the input GraphDef (binary, or text by name or content); never modified.
    output : where to write (default ``FILE.min``); binary or text by its name.
    options : what to cluster and how (:class:`minigraph.compress.Options`).
    force : replace an existing output (never the input).
    verify : re-read the written temp file and check it before it replaces anything.
    gzip : also measure gzip -9 sizes before and after.
    progress : see :func:`minigraph.compress.plan_compression`.

    Returns
    -------
    dict
        The report (:meth:`Report.to_dict`) with the file facts: paths, bytes before and after,
        gzip sizes, whether it was verified, elapsed seconds.

    Raises
    ------
    GraphError
        One sentence starting with the input path; the output is then as it was before.
    """
    path = os.fspath(path)
    out = Path(output) if output else default_output(path)
    try:
        if os.path.isdir(path):
            return _compress_savedmodel(path, out, options or Options(), force, verify, progress)
        return _compress_file(path, out, options or Options(), force, verify, gzip, progress)
    except MinigraphError as exc:
        message = str(exc)
        raise GraphError(message if message.startswith(f"{path}: ") else f"{path}: {message}"
                         ) from None


def _compress_savedmodel(path: str, out: Path, options: Options, force: bool, verify: bool,
                         progress: Progress | None) -> dict[str, Any]:
    """A SavedModel directory to another (see :func:`minigraph.savedmodel.compress_savedmodel`)."""
    started = time.perf_counter()
    report = compress_savedmodel(path, out, options, force=force, verify=verify,
                                 progress=progress)
    report.files.update(verified=verify, gzip_bytes_before=None, gzip_bytes_after=None,
                        elapsed_seconds=round(time.perf_counter() - started, 4))
    return report.to_dict()


def _compress_file(path: str, out: Path, options: Options, force: bool, verify: bool,
                   gzip: bool, progress: Progress | None) -> dict[str, Any]:
    started = time.perf_counter()
    _check_paths(path, out, force)
    data = pbfile.read_bytes(path)
    bytes_before = len(data)
    text_out = pbfile.is_text_path(out)
    graph_def, lifted = _read_for_compression(path, data, text_out)
    gzip_before = _in_background(_gzip_size, data) if gzip else None
    report, planned = plan_compression(graph_def, options, progress=progress, lifted=lifted,
                                       coded=options.palettize)
    if options.palettize:
        markers = {ref.name: ref.tensor.tensor_content for ref, _ in planned}
        changes = palettize_changes(graph_def, report, planned)
        kept = {markers[ref.name] for ref, _ in changes}
        for marker in set(markers.values()) - kept:  # palettized: their payloads are not written
            lifted.pop(marker, None)
    else:
        changes = as_changes(planned)  # arrays already
    del planned
    chunks, expected = serialize_compressed(graph_def, changes, text=text_out, lifted=lifted)
    del changes, lifted
    held = [graph_def, data]
    del graph_def, data  # only `held` keeps the input now: freed once the output is written
    bytes_after, gzip_bytes_after = _write_verified(out, chunks, expected, text_out, verify,
                                                    gzip, held)
    report.files = {"file": path, "output": str(out), "bytes_before": bytes_before,
                    "bytes_after": bytes_after,
                    "gzip_bytes_before": gzip_before() if gzip_before else None,
                    "gzip_bytes_after": gzip_bytes_after,
                    "verified": verify,
                    "elapsed_seconds": round(time.perf_counter() - started, 4)}
    return report.to_dict()


def _write_verified(out: Path, chunks: list[Chunk],
                    expected: Callable[[], tuple[int, list[int]]], text: bool, verify: bool,
                    gzip: bool, held: list[Any]) -> tuple[int, int | None]:
    """Write the chunks to a temp file, empty ``held`` (the input, so that it is freed before
    the output is read back), check the file, then rename it over ``out``; returns (bytes
    written, gzip -9 size if asked)."""
    with pbfile.AtomicFile(out) as target:
        crc = target.write(_draining(chunks))
        digests = expected()
        del expected
        held.clear()
        bytes_after = target.temp_path.stat().st_size
        gzip_after = _in_background(_gzip_file, target.temp_path) if gzip else None
        if verify:
            verify_output(target.temp_path, crc, digests, text=text)
        gzip_bytes_after = gzip_after() if gzip_after else None  # read before the rename
        target.commit()
    return bytes_after, gzip_bytes_after


def expand_file(path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, *,
                force: bool = False, verify: bool = True) -> dict[str, Any]:
    """Write a palettized GraphDef back in the values form (every palette subgraph a Const).

    The result is byte for byte the values form that compressing with the same options
    writes. The default output is ``FILE.expanded``.

    Returns
    -------
    dict
        ``file``, ``output``, ``expanded`` (names restored, sorted), ``bytes_before``,
        ``bytes_after``, ``verified``.

    Raises
    ------
    GraphError
        One sentence starting with the input path; the output is then as it was before.
    """
    path = os.fspath(path)
    out = Path(output) if output else Path(path + ".expanded")
    try:
        _check_paths(path, out, force)
        data = pbfile.read_bytes(path)
        text_out = pbfile.is_text_path(out)
        graph_def = pbfile.parse_graph(data, text=True if pbfile.is_text_path(path) else None)
        names = sorted(expand(graph_def))
        chunks, expected = serialize_compressed(graph_def, [], text=text_out)
        bytes_before = len(data)
        bytes_after, _ = _write_verified(out, chunks, expected, text_out, verify, False,
                                         [graph_def, data])
    except MinigraphError as exc:
        message = str(exc)
        raise GraphError(message if message.startswith(f"{path}: ") else f"{path}: {message}"
                         ) from None
    return {"file": path, "output": str(out), "expanded": names, "bytes_before": bytes_before,
            "bytes_after": bytes_after, "verified": verify}


def _draining(chunks: list[Chunk]) -> Iterable[Chunk]:
    """Yield the chunks, dropping each from the list once written (they may hold the input)."""
    chunks.reverse()
    while chunks:
        yield chunks.pop()


def inspect_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``minigraph inspect`` reports for one file (or SavedModel directory), JSON-ready.

    A SavedModel's dict is :func:`minigraph.savedmodel_summary.inspect_savedmodel`'s (it has a
    ``variables`` key); a GraphDef's is :func:`minigraph.report.inspect_dict`'s.

    Raises
    ------
    GraphError
        One sentence starting with the path.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        try:
            return inspect_savedmodel(path)
        except MinigraphError as exc:
            message = str(exc)
            raise GraphError(message if message.startswith(f"{path}") else f"{path}: {message}"
                             ) from None
    try:
        data = pbfile.read_bytes(path)
        summary = summarize_graph(pbfile.parse_graph(
            data, text=True if pbfile.is_text_path(path) else None))
    except MinigraphError as exc:
        message = str(exc)
        raise GraphError(message if message.startswith(f"{path}: ") else f"{path}: {message}"
                         ) from None
    return inspect_dict(summary, path, len(data))
