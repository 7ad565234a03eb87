"""One input path to one figure: read, plan a compression (nothing written), draw."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from . import pbfile
from .compress import Options, Progress, plan_compression
from .errors import MinigraphError, PlotError
from .plot import FORMATS, draw
from .report import Report
from .palette import expand, find_palettes
from .savedmodel import plan_savedmodel, read_savedmodel

__all__ = ["plot_file", "default_figure"]


def default_figure(path: str | os.PathLike[str]) -> Path:
    """Where ``minigraph plot FILE`` draws by default: ``FILE.png`` beside ``FILE`` (for a
    SavedModel directory ``DIR``, ``DIR.png`` beside it)."""
    return Path(os.fspath(path).rstrip(os.sep) + ".png")


def _plan_graph(path: str, options: Options, progress: Progress | None) -> tuple[Report, int]:
    """Cluster a GraphDef file's Consts in memory, as ``minigraph FILE`` would, with figure data."""
    data = pbfile.read_bytes(path)
    lifted: dict[bytes, memoryview] = {}
    if pbfile.is_text_path(path) or pbfile.looks_like_text(data):
        graph_def = pbfile.parse_graph(data, text=pbfile.is_text_path(path) or None)
    else:
        graph_def, lifted = pbfile.parse_graph_lifted(data)
    if find_palettes(graph_def):
        # A palettized file: its tensors are drawn as the values they decode to. Their index
        # Consts may have been lifted out, so the graph is read whole before expanding.
        graph_def, lifted = pbfile.parse_graph(data, text=None), {}
        expand(graph_def)
    report, _ = plan_compression(graph_def, options, progress=progress, lifted=lifted)
    return report, len(data)


def _plan_savedmodel(path: str, options: Options, progress: Progress | None
                     ) -> tuple[Report, int]:
    """The same for a SavedModel directory: its variables and Consts."""
    saved_model, bundle = read_savedmodel(path)
    report, _, _ = plan_savedmodel(saved_model, bundle, options, progress)
    size = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
    return report, size


def _check_output(path: str, out: Path) -> None:
    """Refuse an unknown figure format and the input itself as output (before any work)."""
    if out.suffix.lower() not in FORMATS:
        raise PlotError(f"cannot draw {out}: unknown figure format {out.suffix!r} "
                        f"(use .png, .svg or .pdf)")
    try:
        same = os.path.samefile(path, out)
    except OSError:
        return
    if same:
        raise PlotError(f"output {out} is the input itself; choose another")


def plot_file(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
              k: int = 256,
              patterns: Sequence[str] = (), options: Options | None = None,
              progress: Progress | None = None) -> dict[str, Any]:
    """Draw the figure of compressing one file with k centroids, without writing the model.

    The file is clustered in memory exactly as ``minigraph FILE -k K`` would cluster it (a
    tensor already holding at most k values keeps them: they are its codebook), and the figure
    shows the six largest float Consts, or the nine largest of those matching ``patterns``
    (matched as ``--whitelisted`` matches).

    Parameters
    ----------
    path : path
        A GraphDef (``.pb`` or text), possibly already compressed, or a SavedModel directory.
    out : path, optional
        The figure: ``.png``, ``.svg`` or ``.pdf`` (replaced if it exists; never the input).
        Default: :func:`default_figure`.
    k : int
        Centroids per tensor (overrides ``options.n_clusters``).
    patterns : sequence of str
        Names or shell patterns of the Consts to draw (library nodes as ``FUNCTION/NODE``).
    options : Options, optional
        Everything else about the clustering (method, init, seed, minimum size, ...).
    progress : callable, optional
        As for :func:`minigraph.compress.plan_compression`.

    Returns
    -------
    dict
        The report (:meth:`Report.to_dict`) with ``file``, ``output`` (None: no model written),
        ``bytes_before`` and ``figure`` (the path drawn); rows drawn carry ``figure`` data.

    Raises
    ------
    MinigraphError
        One sentence starting with ``path``: PlotError (no matplotlib, bad suffix, no Const
        matching the patterns), or the reading errors of ``minigraph FILE``.
    """
    path = os.fspath(path)
    target = Path(out) if out is not None else default_figure(path)
    chosen = replace(options or Options(), n_clusters=k, figure_data=True,
                     figure_tensors=tuple(patterns))
    try:
        _check_output(path, target)
        plan = _plan_savedmodel if os.path.isdir(path) else _plan_graph
        report, size = plan(path, chosen.validate(), progress)
        report.files = {"file": path, "output": None, "bytes_before": size,
                        "figure": str(target)}
        result = report.to_dict()
        if patterns and not any("figure" in row for row in result["tensors"]):
            raise PlotError(f"no float Const with stored values matches --tensor "
                            f"{' '.join(patterns)}")
        draw(result, target)
    except MinigraphError as exc:
        message = str(exc)
        raise type(exc)(message if message.startswith(f"{path}") else f"{path}: {message}"
                        ) from None
    return result
