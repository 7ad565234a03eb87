"""A compression report's figure data as one picture (the optional ``plot`` extra: matplotlib).

matplotlib is imported only when a figure is drawn, never by ``import minigraph``. The figure
is built with matplotlib's object API on an Agg canvas (no pyplot, no global backend switch, no
user style: the same input gives the same bytes), from the numbers the compression run put in
the report (:mod:`minigraph.plotdata`); the model is not read again.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import pbfile
from .errors import PlotError
from .report import format_bytes

__all__ = ["FORMATS", "MISSING_EXTRA", "draw", "shorten_name", "shorten_names", "common_ending"]

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
MISSING_EXTRA = "plotting needs matplotlib: pip install 'minigraph[plot]'"
NAME_WIDTH = 30  # characters of a tensor name shown; longer names lose their middle
_COLUMNS = 3  # histograms per row
_SQNR_CAP = 100.0  # dB: the trade-off axis stops here
_UNITS = (("MiB", 1 << 20), ("KiB", 1 << 10), ("bytes", 1))  # bytes axis: whole units, round ticks
_DPI = 100
# Fixed rather than taken from the user's matplotlibrc. svg.hashsalt replaces the random salt
# of SVG element ids; svg.fonttype "none" keeps text as <text> (searchable, small); TrueType
# (42) fonts in PDF keep text selectable.
_RC = {"svg.hashsalt": "minigraph", "svg.fonttype": "none", "pdf.fonttype": 42,
       "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
       "xtick.labelsize": 7, "ytick.labelsize": 7}
# No dates or tool versions in the files: the same report gives the same bytes.
_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


def shorten_name(name: str, width: int = NAME_WIDTH) -> str:
    """``name`` if it fits in ``width`` characters, else its start and end around ``…``.

    The start (the layer) gets the odd character: ``shorten_name("abcdefghij", 6)`` is
    ``"abc…ij"``.

    Raises
    ------
    ValueError
        If ``width`` < 3 (too short to keep both ends).
    """
    if width < 3:
        raise ValueError(f"width must be at least 3, got {width}")
    if len(name) <= width:
        return name
    head = width // 2
    tail = width - 1 - head
    return name[:head] + "…" + name[len(name) - tail:]


def shorten_names(names: Sequence[str], width: int = NAME_WIDTH) -> list[str]:
    """:func:`shorten_name` of each, widened where two distinct names would read the same."""
    shown = [shorten_name(name, width) for name in names]
    longest = max((len(name) for name in names), default=0)
    while len(set(shown)) < len(set(names)) and width < longest:
        width += 4
        shown = [shorten_name(name, width) if shown.count(short) > 1 else short
                 for name, short in zip(names, shown, strict=True)]
    return shown


def common_ending(names: Sequence[str]) -> str:
    """The path ending (from a ``/``) that all of two or more names share, else ``""``.

    Frozen TF2 graphs name every weight ``LAYER/OP/ReadVariableOp/resource``: without the
    shared ending the part that tells them apart fits in the labels.
    """
    if len(names) < 2:
        return ""
    parts = [name.split("/") for name in names]
    shared = 0
    while shared < min(len(p) for p in parts) - 1 and len({p[-1 - shared] for p in parts}) == 1:
        shared += 1
    return "/" + "/".join(parts[0][len(parts[0]) - shared:]) if shared else ""


def _writable_dir(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def _ensure_config_dir() -> None:
    """Point MPLCONFIGDIR at a temp dir when matplotlib's own dirs cannot be written.

    matplotlib keeps its config and font cache in ``$XDG_CONFIG_HOME/matplotlib`` and
    ``$XDG_CACHE_HOME/matplotlib`` (``~/.config``, ``~/.cache``); where those are read-only it
    makes a temp dir itself but logs a warning to stderr, which library code must not do.
    """
    if "matplotlib" in sys.modules or os.environ.get("MPLCONFIGDIR"):
        return
    home = os.path.expanduser("~")
    dirs = [os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"),
                         "matplotlib"),
            os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"),
                         "matplotlib")]
    if not all(_writable_dir(path) for path in dirs):
        os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="minigraph-matplotlib-")


def _matplotlib() -> tuple[Any, Any, Any]:
    """matplotlib, its Figure class and the Agg canvas; PlotError naming the extra without it."""
    _ensure_config_dir()
    try:
        import matplotlib
        import matplotlib.style
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(MISSING_EXTRA) from None
    return matplotlib, Figure, FigureCanvasAgg


def require_matplotlib() -> None:
    """Raise PlotError naming the extra unless matplotlib can be imported (checked up front,
    so that a run asked for a figure fails before it writes anything)."""
    _matplotlib()


def _bytes_after(row: dict[str, Any]) -> int:
    """The row's own count when the run measured one (the palette form's nodes), else the
    stored bytes of the new values."""
    own = row.get("bytes_after")
    return int(own) if own is not None else int(row["figure"]["bytes_after"])


def _tensor_caption(row: dict[str, Any], label: str) -> str:
    figure = row["figure"]
    shape = "×".join(str(d) for d in row["shape"]) or "scalar"
    if row["clustered"]:
        error = "no error" if row["sqnr_db"] is None else f"SQNR {row['sqnr_db']:.1f} dB"
        state = f"k = {len(figure['codebook'])}, {error}"
    elif figure["codebook"]:
        state = f"{len(figure['codebook'])} values already"
    else:
        state = f"not clustered: {row['skipped']}"
    return f"{label}\n[{shape}] {state}"


def _histogram(ax: Any, row: dict[str, Any], color: Any, label: str) -> None:
    """Counts on a log scale; the codebook as a rug along the bottom (and as faint lines too
    when it is small enough for lines to stay apart)."""
    figure = row["figure"]
    hist = figure["histogram"]
    ax.set_title(_tensor_caption(row, label), loc="left")
    if hist["range"] is None:
        ax.text(0.5, 0.5, "no finite values", ha="center", transform=ax.transAxes)
        return
    counts = np.asarray(hist["counts"], dtype=np.float64)
    edges = np.linspace(hist["range"][0], hist["range"][1], counts.size + 1)
    ax.stairs(counts, edges, fill=True, color=color, alpha=0.55, linewidth=0)
    ax.set_yscale("log")
    ax.set_ylim(0.7, max(2.0, counts.max()) * 2.0)
    book = figure["codebook"]
    if book:
        strip = ax.get_xaxis_transform()  # x in data, y in axes fractions
        ax.vlines(book, 0.0, 0.09, transform=strip, colors="black", linewidth=0.7)
        if len(book) <= 16:
            ax.vlines(book, 0.09, 1.0, transform=strip, colors="black", linewidth=0.5, alpha=0.3)
    ax.locator_params(axis="x", nbins=5)
    ax.tick_params(axis="y", which="minor", labelleft=False)  # 2×10^0 ... clutter small axes
    ax.set_ylabel("count")


def _curves(ax: Any, rows: list[dict[str, Any]], colors: list[Any], labels: list[str],
            lines: Any) -> None:
    """SQNR against bits per weight, one line per tensor; ★ at the run's choice, ▲ on the top
    edge where the stored values are already exact (infinite SQNR)."""
    top_edge = ax.get_xaxis_transform()
    widest = 8
    for row, color, label in zip(rows, colors, labels, strict=True):
        curve = row["figure"]["curve"]
        points = [(b, s) for b, s in zip(curve["bits"], curve["sqnr_db"], strict=True)
                  if s is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, color=color, label=label)
        chosen = row["figure"]["chosen"]
        if chosen is None:
            continue
        widest = max(widest, chosen["bits"])
        if chosen["sqnr_db"] is not None:
            ax.plot([chosen["bits"]], [chosen["sqnr_db"]], marker="*", markersize=13,
                    color=color, markeredgecolor="black", linestyle="none", zorder=4)
        else:
            ax.plot([chosen["bits"]], [0.96], marker="^", markersize=9, color=color,
                    markeredgecolor="black", transform=top_edge, zorder=4)
    low, high = ax.get_ylim()
    # Beyond ~100 dB a tensor is lossless for any purpose (float32 itself is ~150 dB); a
    # tensor of extreme range would otherwise flatten every other curve.
    capped = high > _SQNR_CAP
    ax.set_ylim(max(low, 0.0), min(high, _SQNR_CAP) * 1.06)  # room for the ▲ at the top
    ax.set_xticks(range(0 if widest == 0 else 1, widest + 1))
    ax.set_xlabel("bits per weight  (k = 2^bits centroids)")
    ax.set_ylabel("SQNR (dB)")
    samples = [figure["curve"]["sample"] for figure in (row["figure"] for row in rows)
               if figure["curve"].get("sample", 0) < sum(figure["histogram"]["counts"])]
    ax.set_title("size–error trade-off (k-means at each k" + (
        f"; lines on samples of {max(samples):,} values, ★ on all" if samples else "")
        + (f"; axis cut at {_SQNR_CAP:.0f} dB" if capped else "") + ")", loc="left")
    ax.grid(True, alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    key = {"linestyle": "none", "color": "white", "markeredgecolor": "black"}
    handles += [lines([], [], marker="*", markersize=11, **key),
                lines([], [], marker="^", markersize=8, **key)]
    names += ["this run's k", "already exact"]
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _bytes(ax: Any, rows: list[dict[str, Any]], colors: list[Any], labels: list[str]) -> None:
    """Horizontal bars, largest tensor on top: stored bytes before (grey) and after."""
    y = np.arange(len(rows))
    before = [int(row["figure"]["bytes_before"]) for row in rows]
    after = [_bytes_after(row) for row in rows]
    largest = max(before + after + [1])
    unit, scale = next((u, s) for u, s in _UNITS if largest >= s or s == 1)
    for values, offset, color, name in ((before, -0.2, "0.7", "before"),
                                        (after, 0.2, colors, "after")):
        bars = ax.barh(y + offset, [v / scale for v in values], 0.38, color=color, label=name)
        ax.bar_label(bars, [format_bytes(v) for v in values], padding=2, fontsize=7)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, largest / scale * 1.3)  # room for the labels
    ax.set_xlabel(unit)
    ax.set_title(f"stored bytes: {format_bytes(sum(before))} → {format_bytes(sum(after))} "
                 f"(tensors shown)", loc="left")
    ax.legend(loc="lower right")


def _title(result: dict[str, Any]) -> str:
    options, totals = result["options"], result["totals"]
    where = shorten_name(os.path.basename(str(result.get("file", "")).rstrip(os.sep)) or "graph",
                         60)
    line = (f"{where}: k = {options['n_clusters']}"
            f"{' (one global codebook)' if options['global_clusters'] else ''}, "
            f"{totals['clustered']} of {totals['consts']} consts clustered "
            f"({totals['weights_clustered']:,} weights)")
    if result.get("bytes_before") is not None:
        after = result.get("bytes_after")
        line += (f", file {format_bytes(result['bytes_before'])}"
                 + (f" → {format_bytes(after)}" if after is not None else ""))
    return line


def _shown(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [row for row in result.get("tensors", ()) if row.get("figure")]
    return sorted(rows, key=lambda row: (-row["elements"], row["name"]))


def _render(result: dict[str, Any], rows: list[dict[str, Any]], fmt: str) -> bytes:
    matplotlib, figure_class, canvas_class = _matplotlib()
    from matplotlib.lines import Line2D

    names = [row["name"] for row in rows]
    ending = common_ending(names)
    labels = shorten_names([name[:len(name) - len(ending)] for name in names])
    n_rows = -(-len(rows) // _COLUMNS)
    with matplotlib.style.context("default"), matplotlib.rc_context(_RC):
        colors = [matplotlib.colormaps["tab10"](i % 10) for i in range(len(rows))]
        figure = figure_class(figsize=(13, 2.3 * n_rows + 3.8), layout="constrained")
        canvas_class(figure)
        grid = figure.add_gridspec(2, 1, height_ratios=[2.3 * n_rows, 3.8])
        cells = grid[0].subgridspec(n_rows, _COLUMNS)
        for i, (row, color, label) in enumerate(zip(rows, colors, labels, strict=True)):
            _histogram(figure.add_subplot(cells[i // _COLUMNS, i % _COLUMNS]), row, color, label)
        lower = grid[1].subgridspec(1, 2, width_ratios=[1.35, 1.0])
        _curves(figure.add_subplot(lower[0]), rows, colors, labels, Line2D)
        _bytes(figure.add_subplot(lower[1]), rows, colors, labels)
        title = _title(result) + (f"\ntensor names shown without their common ending "
                                  f"'{ending}'" if ending else "")
        figure.suptitle(title, fontsize=11, x=0.01, ha="left")
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=_DPI, metadata=_METADATA[fmt])
    return buffer.getvalue()


def draw(result: dict[str, Any], out_path: str | os.PathLike[str]) -> Path:
    """Draw one file's report as a figure: histograms, SQNR against bits, bytes per tensor.

    Parameters
    ----------
    result : dict
        A report dict (:meth:`minigraph.Report.to_dict`, or what ``compress_file`` returns)
        from a run with ``Options(figure_data=True)``; only its rows with a ``figure`` are drawn.
    out_path : path
        Where to write; the format follows the suffix: ``.png``, ``.svg`` or ``.pdf``. Written
        atomically (a temp file beside it, then a rename); an existing file is replaced.

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    PlotError
        matplotlib is not installed, the suffix is not one of the three, or no row has figure
        data. GraphError if the file cannot be written.
    """
    out = Path(out_path)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise PlotError(f"cannot draw {out}: unknown figure format {out.suffix!r} "
                        f"(use .png, .svg or .pdf)")
    rows = _shown(result)
    if not rows:
        raise PlotError(f"{result.get('file', 'the report')}: nothing to draw: no float tensor "
                        f"with figure data (compress with Options(figure_data=True))")
    data = _render(result, rows, fmt)
    with pbfile.AtomicFile(out) as target:
        target.write(data)
        target.commit()
    return out
