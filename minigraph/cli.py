"""Command line: ``minigraph FILE...`` and ``minigraph inspect FILE...``; the only module that
writes to stdout or stderr."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Sequence

from ._version import __version__
from .compress import Options, plan_compression, write_compressed
from .errors import GraphError, MinigraphError
from .pbfile import is_text_path, looks_like_text, parse_graph, parse_graph_lifted, read_graph
from .engine import INITS, METHODS
from .report import FORMAT_VERSION, TensorReport, inspect_dict, render_compress, render_inspect
from .summary import summarize_graph

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_EXIT_TEXT = """exit codes:
  0  success
  1  a file failed (unreadable or invalid input, unsupported content, failed write)
  2  usage error"""


def _error(message: str) -> None:
    print(f"minigraph: error: {message}", file=sys.stderr)


def _inspect_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigraph inspect", epilog=_EXIT_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Report every Const of a GraphDef (main graph and library functions): "
                    "dtype, shape, elements, stored encoding, distinct values and bytes.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="GraphDef file (.pb or .pbtxt)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of tables")
    parser.add_argument("--version", action="version", version=f"minigraph {__version__}")
    return parser


def _run_inspect(args: argparse.Namespace) -> int:
    results, failed = [], 0
    for path in args.files:
        try:
            graph_def = read_graph(path)
            summary = summarize_graph(graph_def)
        except MinigraphError as exc:
            message = str(exc)
            _error(message if message.startswith(path) else f"{path}: {message}")
            failed += 1
            continue
        results.append(inspect_dict(summary, path, os.path.getsize(path)))
    if args.json:
        print(json.dumps({"format_version": FORMAT_VERSION, "files": results,
                          "failed": failed}, indent=2))
    else:
        print("\n\n".join(render_inspect(result) for result in results))
    return EXIT_FAILED if failed else EXIT_OK


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    """Parse, turning argparse's exits (help, version, usage errors) into return codes."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def _compress_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigraph", epilog=_EXIT_TEXT + "\n\nSee also: minigraph inspect --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [options] FILE...\n       %(prog)s inspect [--json] FILE...",
        description="Write FILE.min next to each FILE: the same GraphDef with every float Const's "
                    "values replaced by at most k cluster centroids (k-means weight sharing), "
                    "so the file compresses far better with gzip or zip.")
    add = parser.add_argument
    add("files", nargs="+", metavar="FILE", help="frozen GraphDef (.pb, or .pbtxt text)")
    add("-o", "--output", metavar="PATH", help="output path (one input only; default FILE.min)")
    add("-f", "--force", action="store_true", help="replace an existing output file")
    add("-k", "--n-clusters", "--n_clusters", dest="n_clusters", type=int, default=256,
        metavar="K", help="at most K distinct values per tensor (default 256)")
    add("--global-clusters", "--global_clusters", dest="global_clusters", action="store_true",
        help="one codebook of K values for all clustered tensors instead of one per tensor")
    add("--whitelisted", "--whitelist", dest="whitelisted", action="append", default=[],
        metavar="A,B", help="Consts not to cluster: node names or shell patterns (dense_1/*), "
                            "comma-separated, repeatable; library nodes as FUNCTION/NODE or NODE")
    add("--min-n-weights", "--min_n_weights", dest="min_n_weights", type=int, default=256,
        metavar="N", help="skip tensors with fewer than N elements (default 256)")
    add("--method", choices=METHODS, default="auto", help="clustering method (default auto)")
    add("--init", choices=INITS, default="auto", help="Lloyd initialisation (default auto)")
    add("--seed", type=int, default=0, help="seed for the random initialisations (default 0)")
    add("--workers", type=int, default=None, metavar="N",
        help="tensors clustered at once (default: up to 2 cores)")
    add("--verify", action=argparse.BooleanOptionalAction, default=True,
        help="re-read and check each written file (default on)")
    add("--gzip", action="store_true",
        help="also report gzip -9 sizes before and after (costs seconds on large files)")
    add("--json", action="store_true", help="print one JSON object instead of tables")
    add("-q", "--quiet", action="store_true", help="no progress bar")
    add("--version", action="version", version=f"minigraph {__version__}")
    return parser


def _output_path(path: str, args: argparse.Namespace) -> Path:
    """Where FILE's result goes; refuses the input itself and, without --force, existing files."""
    out = Path(args.output) if args.output else Path(path + ".min")
    if out.exists():
        if os.path.samefile(out, path):
            raise GraphError(f"{path}: output {out} is the input file itself; choose another")
        if not args.force:
            raise GraphError(f"{path}: output {out} already exists (use --force to replace it)")
    return out


def _gzip_size(data: bytes) -> int:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container, like gzip -9
    return len(compressor.compress(data)) + len(compressor.flush())


def _in_background(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Run fn in a thread (zlib releases the GIL); calling the result waits for its value."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    thread.start()

    def result() -> Any:
        thread.join()
        return box[0]
    return result


def _verify(out: Path, crc: int, original_nodes: list[tuple[str, str]]) -> None:
    """Re-read the output: the bytes written, a valid GraphDef, the same nodes in the same order."""
    try:
        data = out.read_bytes()
    except OSError as exc:
        raise GraphError(f"{out}: cannot re-read for verification: {exc.strerror}") from None
    if zlib.crc32(data) != crc:
        raise GraphError(f"{out}: verification failed: the file differs from what was written")
    if is_text_path(out):
        graph_def = parse_graph(data, text=True)
    else:  # the structure is what is checked: large payloads need not be copied for it
        graph_def, _ = parse_graph_lifted(data)
    if [(n.name, n.op) for n in graph_def.node] != original_nodes:
        raise GraphError(f"{out}: verification failed: nodes differ from the input's")


def _compress_file(path: str, args: argparse.Namespace, options: Options,
                   progress: Callable[[TensorReport | None, int, int], None] | None
                   ) -> dict[str, Any]:
    started = time.perf_counter()
    out = _output_path(path, args)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise GraphError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text_in = is_text_path(path) or looks_like_text(data)
        lifted: dict[bytes, memoryview] = {}
        if text_in or is_text_path(out):
            graph_def = parse_graph(data, text=text_in)
        else:  # large tensor contents stay in `data`: decoded in place, never copied
            graph_def, lifted = parse_graph_lifted(data)
        nodes = [(n.name, n.op) for n in graph_def.node]
        gzip_before = _in_background(lambda: _gzip_size(data)) if args.gzip else None
        bytes_before = len(data)
        report, changes = plan_compression(graph_def, options, progress=progress, lifted=lifted)
        crc = write_compressed(graph_def, changes, out, text=is_text_path(out), lifted=lifted)
    except MinigraphError as exc:
        message = str(exc)
        raise GraphError(message if message.startswith((path, str(out))) else f"{path}: {message}") from None
    del graph_def, changes, lifted, data  # free the input and new values before re-reading
    bytes_after = out.stat().st_size
    gzip_after = _in_background(lambda: _gzip_size(out.read_bytes())) if args.gzip else None
    if args.verify:
        try:
            _verify(out, crc, nodes)
        except MinigraphError:
            out.unlink(missing_ok=True)
            raise
    report.files = {"file": path, "output": str(out), "bytes_before": bytes_before,
                    "bytes_after": bytes_after,
                    "gzip_bytes_before": gzip_before() if gzip_before else None,
                    "gzip_bytes_after": gzip_after() if gzip_after else None,
                    "verified": bool(args.verify),
                    "elapsed_seconds": round(time.perf_counter() - started, 4)}
    return report.to_dict()


def _progress_bar(args: argparse.Namespace) -> Callable[[TensorReport | None, int, int], None] | None:
    """A tqdm bar on stderr (weights per second), only for a terminal and without --quiet."""
    if args.quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm  # imported only when a bar can be shown

    bars: list[Any] = []

    def update(row: TensorReport | None, done: int, total: int) -> None:
        if row is None:  # the start: shown after half a second, so short runs stay quiet
            bars.append(tqdm(total=total, unit="weights", unit_scale=True, delay=0.5,
                             leave=False, file=sys.stderr, desc="clustering"))
            return
        bar = bars[0]
        bar.set_postfix_str(row.name[-40:], refresh=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
    return update


def _run_compress(args: argparse.Namespace) -> int:
    if args.output and len(args.files) > 1:
        _error("-o/--output takes one input file; got " + str(len(args.files)))
        return EXIT_USAGE
    whitelisted = tuple(name for item in args.whitelisted for name in item.split(","))
    try:
        options = Options(args.n_clusters, args.global_clusters, whitelisted, args.min_n_weights,
                          args.method, args.init, args.seed, args.workers).validate()
    except MinigraphError as exc:
        _error(str(exc))
        return EXIT_USAGE
    results, failed = [], []
    for path in args.files:
        try:
            results.append(_compress_file(path, args, options, _progress_bar(args)))
        except MinigraphError as exc:
            message = str(exc)
            _error(message if message.startswith(path) else f"{path}: {message}")
            failed.append({"file": path, "error": message})
    if args.json:
        print(json.dumps({"format_version": FORMAT_VERSION, "files": results, "failed": failed},
                         indent=2))
    else:
        text = "\n\n".join(render_compress(result) for result in results)
        if failed and len(args.files) > 1:
            text += f"\n\n{len(failed)} of {len(args.files)} files failed: " + ", ".join(
                item["file"] for item in failed)
        if text:
            print(text)
    return EXIT_FAILED if failed else EXIT_OK


def _return_freed_memory() -> None:
    """Make glibc give large freed buffers back to the system at once.

    glibc serves blocks below its dynamic mmap threshold (which grows to 32 MiB after large
    frees) from heaps it rarely shrinks, so each tensor's temporary arrays would stay in the
    process after use and add up across tensors and threads; mmapped blocks are returned on free.
    A process-wide setting, so only the command line makes it; elsewhere it is a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD = 1 MiB
    except (OSError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 1 a file failed, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _return_freed_memory()
    if argv[:1] == ["inspect"]:
        args = _parse(_inspect_parser(), argv[1:])
        return args if isinstance(args, int) else _run_inspect(args)
    args = _parse(_compress_parser(), argv)
    try:
        return args if isinstance(args, int) else _run_compress(args)
    except BrokenPipeError:  # the report's reader went away (minigraph FILE | head)
        sys.stderr.close()
        return EXIT_FAILED
