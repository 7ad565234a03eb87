"""Command line: ``minigraph inspect FILE...``; the only module that writes to stdout or stderr."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from . import __version__
from .errors import MinigraphError
from .pbfile import read_graph
from .report import FORMAT_VERSION, inspect_dict, render_inspect
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 1 a file failed, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["inspect"]:
        args = _parse(_inspect_parser(), argv[1:])
        return args if isinstance(args, int) else _run_inspect(args)
    _error("usage: minigraph inspect FILE... (compression is not available in this version)")
    return EXIT_USAGE
