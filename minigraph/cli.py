"""Command line: ``minigraph FILE...`` and its ``inspect``, ``expand`` and ``plot`` subcommands;
the only module that writes to stdout or stderr."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from ._version import __version__
from .compress import Options
from .engine import INITS, METHODS
from .errors import MinigraphError
from .errors import PlotError
from .files import compress_file, expand_file, inspect_file
from .plot import FORMATS, require_matplotlib
from .plot import draw as draw_figure
from .plotfile import plot_file
from .report import (FORMAT_VERSION, TensorReport, render_compress, render_expand,
                     render_inspect, render_inspect_savedmodel)

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
        description="Report every Const of a GraphDef (main graph and library functions), or "
                    "every variable and Const of a SavedModel directory: "
                    "dtype, shape, elements, stored encoding, distinct values and bytes.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="GraphDef file (.pb or .pbtxt) or SavedModel directory")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of tables")
    parser.add_argument("--version", action="version", version=f"minigraph {__version__}")
    return parser


def _each_file(paths: Sequence[str], work: Callable[[str], dict[str, Any]]
               ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Run ``work`` on every path: a failure is one error line, and the other files go on."""
    results, failed = [], []
    for path in paths:
        try:
            results.append(work(path))
        except MinigraphError as exc:
            _error(str(exc))
            failed.append({"file": path, "error": str(exc)})
    return results, failed


def _print_json(results: list[dict[str, Any]], failed: object) -> None:
    print(json.dumps({"format_version": FORMAT_VERSION, "files": results, "failed": failed},
                     indent=2))


def _run_inspect(args: argparse.Namespace) -> int:
    results, failed = _each_file(args.files, inspect_file)
    if args.json:
        _print_json(results, len(failed))  # inspect's JSON counts the failures
    elif results:
        print("\n\n".join(render_inspect_savedmodel(result) if "variables" in result
                           else render_inspect(result) for result in results))
    return EXIT_FAILED if failed else EXIT_OK


def _expand_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigraph expand", epilog=_EXIT_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write FILE.expanded next to each FILE: every palette subgraph that "
                    "minigraph --palettize wrote turned back into a plain Const, byte for byte "
                    "the values form that minigraph writes without --palettize.")
    add = parser.add_argument
    add("files", nargs="+", metavar="FILE", help="GraphDef file (.pb or .pbtxt)")
    add("-o", "--output", metavar="PATH",
        help="output path (one input only; default FILE.expanded)")
    add("-f", "--force", action="store_true", help="replace an existing output file")
    add("--verify", action=argparse.BooleanOptionalAction, default=True,
        help="re-read and check each written file (default on)")
    add("--json", action="store_true", help="print one JSON object instead of text")
    add("--version", action="version", version=f"minigraph {__version__}")
    return parser


def _run_expand(args: argparse.Namespace) -> int:
    if args.output and len(args.files) > 1:
        _error("-o/--output takes one input file; got " + str(len(args.files)))
        return EXIT_USAGE
    results, failed = _each_file(args.files, lambda path: expand_file(
        path, args.output, force=args.force, verify=args.verify))
    if args.json:
        _print_json(results, failed)
    elif results:
        print("\n".join(render_expand(result) for result in results))
    return EXIT_FAILED if failed else EXIT_OK


def _plot_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigraph plot", epilog=_EXIT_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Draw what compressing FILE with k centroids does, writing nothing but the "
                    "figure: weight histograms with their centroids, SQNR against bits per "
                    "weight, bytes per tensor. Needs the plot extra: "
                    "pip install 'minigraph[plot]'.")
    add = parser.add_argument
    add("file", metavar="FILE",
        help="GraphDef (plain, compressed or palettized) or SavedModel directory")
    add("-o", "--output", metavar="OUT",
        help="the figure: .png, .svg or .pdf (default FILE.png)")
    add("-k", "--n-clusters", "--n_clusters", dest="n_clusters", type=int, default=256,
        metavar="K", help="centroids per tensor (default 256)")
    add("--tensor", action="append", default=[], metavar="PATTERN",
        help="draw the Consts matching this name or shell pattern (repeatable); "
             "default: the six largest")
    add("--json", action="store_true", help="print the report as one JSON object")
    add("-q", "--quiet", action="store_true", help="no progress bar")
    add("--version", action="version", version=f"minigraph {__version__}")
    return parser


def _run_plot(args: argparse.Namespace) -> int:
    try:
        options = Options(n_clusters=args.n_clusters).validate()
        _check_figure_path(args.output)
    except MinigraphError as exc:
        _error(str(exc))
        return EXIT_USAGE
    try:
        result = plot_file(args.file, args.output, k=args.n_clusters, patterns=args.tensor,
                           options=options, progress=_progress_bar(args))
    except MinigraphError as exc:
        _error(str(exc))
        return EXIT_FAILED
    if args.json:
        print(json.dumps({"format_version": FORMAT_VERSION, "files": [result], "failed": []},
                         indent=2))
    else:
        print(f"{result['file']}: figure written to {result['figure']}")
    return EXIT_OK


def _check_figure_path(path: str | None) -> None:
    """A figure's format comes from its suffix: refuse an unknown one as a usage error."""
    if path is not None and Path(path).suffix.lower() not in FORMATS:
        raise PlotError(f"cannot draw {path}: unknown figure format {Path(path).suffix!r} "
                        f"(use .png, .svg or .pdf)")


_SUBCOMMANDS = {"inspect": (_inspect_parser, _run_inspect), "expand": (_expand_parser, _run_expand),
                "plot": (_plot_parser, _run_plot)}


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    """Parse, turning argparse's exits (help, version, usage errors) into return codes."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def _compress_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigraph",
        epilog=_EXIT_TEXT + "\n\nSee also: minigraph inspect --help, minigraph expand --help, "
                            "minigraph plot --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [options] FILE...\n       %(prog)s inspect [--json] FILE...\n"
              "       %(prog)s expand [-o PATH] [-f] FILE...\n"
              "       %(prog)s plot [-o OUT] [-k K] [--tensor PATTERN] FILE",
        description="Write FILE.min next to each FILE: the same GraphDef with every float Const's "
                    "values replaced by at most k cluster centroids (k-means weight sharing), "
                    "so the file compresses far better with gzip or zip.")
    add = parser.add_argument
    add("files", nargs="+", metavar="FILE",
        help="frozen GraphDef (.pb, or .pbtxt text), or a SavedModel directory (DIR -> DIR.min)")
    add("-o", "--output", metavar="PATH", help="output path (one input only; default FILE.min)")
    add("-f", "--force", action="store_true", help="replace an existing output file")
    add("-k", "--n-clusters", "--n_clusters", dest="n_clusters", type=int, default=256,
        metavar="K", help="at most K distinct values per tensor (default 256)")
    add("--global-clusters", "--global_clusters", dest="global_clusters", action="store_true",
        help="one codebook of K values for all clustered tensors instead of one per tensor")
    add("--group-size", dest="group_size", type=int, default=None, metavar="G",
        help="one codebook of K values per group of G consecutive output channels (the last "
             "axis) instead of one per tensor; not with --global-clusters, whose single "
             "codebook for the whole graph contradicts per-group codebooks")
    add("--bits-per-weight", type=float, default=None, metavar="B",
        help="choose k per tensor (at most K) so the clustered weights take at most B bits "
             "each on average (indices, plus palettes with the palette form), least total "
             "relative error (MSE / mean square summed over tensors)")
    add("--min-sqnr", type=float, default=None, metavar="DB",
        help="choose k per tensor (at most K): the smallest whose SQNR is at least DB decibels")
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
    add("--palettize", action="store_true",
        help="store each clustered tensor as its codebook plus indices packed at "
             "ceil(log2 k) bits, decoded in the graph by core TensorFlow ops (the file itself "
             "shrinks; output bit-identical to the default values form: see minigraph expand)")
    add("--verify", action=argparse.BooleanOptionalAction, default=True,
        help="re-read and check each written file (default on)")
    add("--gzip", action="store_true",
        help="also report gzip -9 sizes before and after (costs seconds on large files)")
    add("--plot", metavar="OUT",
        help="also draw the run's figure (.png, .svg or .pdf; one input only; needs "
             "pip install 'minigraph[plot]')")
    add("--json", action="store_true", help="print one JSON object instead of tables")
    add("-q", "--quiet", action="store_true", help="no progress bar")
    add("--version", action="version", version=f"minigraph {__version__}")
    return parser


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
    for flag, value in (("-o/--output", args.output), ("--plot", args.plot)):
        if value and len(args.files) > 1:
            _error(f"{flag} takes one input file; got {len(args.files)}")
            return EXIT_USAGE
    whitelisted = tuple(name for item in args.whitelisted for name in item.split(","))
    try:
        options = Options(n_clusters=args.n_clusters, global_clusters=args.global_clusters,
                          whitelisted=whitelisted, min_n_weights=args.min_n_weights,
                          method=args.method, init=args.init, seed=args.seed,
                          workers=args.workers, palettize=args.palettize,
                          group_size=args.group_size, figure_data=bool(args.plot),
                          bits_per_weight=args.bits_per_weight,
                          min_sqnr=args.min_sqnr).validate()
        _check_figure_path(args.plot)
    except MinigraphError as exc:
        _error(str(exc))
        return EXIT_USAGE
    if args.plot:
        try:
            require_matplotlib()
        except MinigraphError as exc:
            _error(str(exc))
            return EXIT_FAILED
    def work(path: str) -> dict[str, Any]:
        result = compress_file(path, args.output, options=options, force=args.force,
                               verify=args.verify, gzip=args.gzip, progress=_progress_bar(args))
        if args.plot:
            result["figure"] = str(draw_figure(result, args.plot))
        return result

    results, failed = _each_file(args.files, work)
    if args.json:
        _print_json(results, failed)
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
    try:
        make_parser, run = _SUBCOMMANDS.get(argv[0] if argv else "", (None, None))
        if make_parser is not None and run is not None:
            args = _parse(make_parser(), argv[1:])
            return args if isinstance(args, int) else run(args)
        args = _parse(_compress_parser(), argv)
        return args if isinstance(args, int) else _run_compress(args)
    except BrokenPipeError:  # the report's reader went away (minigraph inspect A B | head -1)
        # Python flushes stdout again at exit; point it at devnull so that raises nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
