"""The figure: its data in the report (no matplotlib needed), and the drawing (the plot extra)."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigraph import compress_file, from_array, read_graph, to_array
from minigraph.compress import Options, plan_compression
from minigraph.errors import PlotError
from minigraph.plot import MISSING_EXTRA, common_ending, draw, shorten_name, shorten_names
from minigraph.plotfile import default_figure, plot_file
from minigraph.report import format_bytes
from minigraph.schema import GraphDef

from conftest import FIXTURES

REPO = Path(__file__).resolve().parents[1]
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(
    not HAVE_MATPLOTLIB, reason="needs matplotlib (pip install '.[plot]'); CI installs the extra")

# The six largest float Consts of cnn_digits.pb (tests/fixtures/README.md), without the ending
# "/ReadVariableOp/resource" they share.
CNN_SHOWN = ["dense1/MatMul", "conv2/Conv2D", "dense2/MatMul", "conv1/Conv2D", "dense1/add",
             "conv2/add"]


def _env() -> dict[str, str]:
    """This process's environment, with this checkout first on the path (for subprocesses)."""
    paths = [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _graph(**tensors: np.ndarray) -> GraphDef:
    graph_def = GraphDef()
    for name, values in tensors.items():
        node = graph_def.node.add(name=name, op="Const")
        node.attr["value"].tensor.CopyFrom(from_array(values))
    return graph_def


def _figures(graph_def: GraphDef, **options) -> dict:
    report, _ = plan_compression(graph_def, Options(figure_data=True, **options))
    result = report.to_dict()
    json.dumps(result, allow_nan=False)  # JSON-ready: plain numbers, no NaN or infinity
    return {row["name"]: row["figure"] for row in result["tensors"] if "figure" in row}


# ±1 ... ±8, 32 times each, shuffled, plus NaN and +inf (left out of everything).
_LEVELS = np.concatenate([-np.arange(8, 0, -1), np.arange(1, 9)]).astype(np.float32)
_HAND = np.random.default_rng(0).permutation(np.concatenate(
    [np.repeat(_LEVELS, 32), np.array([np.nan, np.nan, np.inf], np.float32)]))


# -- the shortener ---------------------------------------------------------------------------

def test_short_names_are_kept_and_long_ones_lose_their_middle():
    assert shorten_name("dense/kernel", 12) == "dense/kernel"
    assert shorten_name("abcdefghij", 6) == "abc…ij"
    assert shorten_name("abcdefghij", 5) == "ab…ij"
    assert shorten_name("abcdefghijk", 3) == "a…k"
    assert len(shorten_name("x" * 100)) == 30
    with pytest.raises(ValueError):
        shorten_name("abcdef", 2)


def test_names_that_would_read_the_same_are_widened_until_they_differ():
    names = ["model/block_1/expand/kernel", "model/block_2/expand/kernel", "fc/w"]
    assert shorten_name(names[0], 12) == shorten_name(names[1], 12) == "model/…ernel"
    shown = shorten_names(names, 12)
    assert len(set(shown)) == 3 and shown[2] == "fc/w"
    assert "block_1" in shown[0] and "block_2" in shown[1]


def test_the_ending_all_names_share_is_found_on_path_boundaries():
    assert common_ending(["a/MatMul/ReadVariableOp/resource", "b/add/ReadVariableOp/resource"]) \
        == "/ReadVariableOp/resource"
    assert common_ending(["x/kernel", "y/kernel", "z/bias"]) == ""
    assert common_ending(["layer/akernel", "layer/bkernel"]) == ""  # not inside a component
    assert common_ending(["kernel", "a/kernel"]) == ""  # never a whole name
    assert common_ending(["only/one"]) == ""


# -- figure data in the report ---------------------------------------------------------------

def test_figure_data_matches_hand_computed_values():
    figure = _figures(_graph(w=_HAND), n_clusters=4)["w"]
    counts = figure["histogram"]["counts"]
    assert sum(counts) == 512 and len(counts) > 10 and counts[0] == 32 and counts[-1] == 32
    assert figure["histogram"]["range"] == [-8.0, 8.0]
    # k = 4 on ±1..±8: clusters {1..4}, {5..8} and mirrors, centroids ±2.5, ±6.5.
    assert figure["codebook"] == [-6.5, -2.5, 2.5, 6.5]
    assert figure["bytes_before"] == figure["bytes_after"] == 515 * 4
    # mean(x^2) = (1 + 4 + ... + 64) / 8 = 25.5. k = 2: centroids ±4.5, MSE (3.5^2 + 2.5^2 +
    # 1.5^2 + 0.5^2) / 4 = 5.25; k = 4: MSE (1.5^2 + 0.5^2) / 2 = 1.25; k = 8: pairs, 0.25.
    sqnr = figure["curve"]["sqnr_db"]
    assert figure["curve"]["bits"] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert sqnr[:3] == pytest.approx([10 * np.log10(25.5 / mse) for mse in (5.25, 1.25, 0.25)])
    assert sqnr[3:] == [None] * 5  # 16 distinct values: exact from 4 bits on
    assert figure["chosen"]["bits"] == 2
    assert figure["chosen"]["sqnr_db"] == pytest.approx(10 * np.log10(25.5 / 1.25))


def test_curve_rises_with_bits_on_a_wide_tensor():
    values = np.random.default_rng(1).laplace(0, 0.05, 5000).astype(np.float32)
    sqnr = _figures(_graph(w=values), n_clusters=16)["w"]["curve"]["sqnr_db"]
    assert None not in sqnr
    assert np.diff(sqnr).min() > 3.0  # about 6 dB per bit, never less


def test_large_tensors_get_their_curve_from_a_sample_close_to_the_whole():
    from minigraph import cluster
    from minigraph.plotdata import CURVE_SAMPLE

    values = np.random.default_rng(2).laplace(0, 0.05, 300_000).astype(np.float32)
    figure = _figures(_graph(w=values), n_clusters=8)["w"]
    assert figure["curve"]["sample"] == CURVE_SAMPLE < values.size
    assert sum(figure["histogram"]["counts"]) == values.size  # the histogram sees every value
    whole = 10 * np.log10(np.mean(np.square(values, dtype=np.float64)) / cluster(values, 8).mse)
    assert figure["curve"]["sqnr_db"][2] == pytest.approx(whole, abs=0.3)
    assert figure["chosen"]["sqnr_db"] == pytest.approx(whole, abs=0.05)  # measured on all


def test_an_already_clustered_tensor_shows_its_own_values_as_codebook():
    # Four values, k = 16: left as they are; k = 2 on {-3, -1, 1, 3}: MSE 1, mean(x^2) 5.
    values = np.tile(np.array([-3, -1, 1, 3], np.float32), 100)
    figure = _figures(_graph(w=values), n_clusters=16)["w"]
    assert figure["codebook"] == [-3.0, -1.0, 1.0, 3.0]
    assert figure["chosen"] == {"bits": 2, "sqnr_db": None}
    assert figure["curve"]["sqnr_db"][0] == pytest.approx(10 * np.log10(5.0))
    assert figure["curve"]["sqnr_db"][1:] == [None] * 7


@pytest.mark.parametrize("dtype", ["DT_HALF", "DT_BFLOAT16", "DT_FLOAT", "DT_DOUBLE"])
def test_every_float_dtype_gets_figure_data(dtype):
    graph_def = GraphDef()
    node = graph_def.node.add(name="w", op="Const")
    node.attr["value"].tensor.CopyFrom(from_array(_HAND.astype(np.float64), dtype=dtype))
    figure = _figures(graph_def, n_clusters=4)["w"]
    assert sum(figure["histogram"]["counts"]) == 512
    assert figure["codebook"] == [-6.5, -2.5, 2.5, 6.5]  # exact in every float type
    assert figure["curve"]["sqnr_db"][0] == pytest.approx(10 * np.log10(25.5 / 5.25))


def test_largest_six_float_tensors_are_picked_unless_patterns_say_otherwise():
    tensors = {f"t{size}": np.linspace(-1, 1, size, dtype=np.float32)
               for size in (200, 400, 500, 600, 700, 800, 900)}
    tensors["ints"] = np.arange(5000, dtype=np.int32)
    assert sorted(_figures(_graph(**tensors))) == ["t400", "t500", "t600", "t700", "t800", "t900"]
    many = {f"m{i}": np.linspace(-1, 1, 300 + i, dtype=np.float32) for i in range(12)}
    largest_nine = sorted(f"m{i}" for i in range(3, 12))
    assert sorted(_figures(_graph(**many), figure_tensors=("m*",))) == largest_nine
    picked = _figures(_graph(**tensors), n_clusters=16, figure_tensors=("t2*", "t9*", "ints"))
    assert sorted(picked) == ["t200", "t900"]
    assert picked["t200"]["chosen"] is None  # too small to cluster, too many values for a codebook
    assert picked["t200"]["codebook"] == []


def test_without_the_opt_in_the_report_is_unchanged():
    graph_def = read_graph(FIXTURES / "mlp_digits.pb")
    plain, _ = plan_compression(graph_def, Options(n_clusters=16))
    shown, _ = plan_compression(graph_def, Options(n_clusters=16, figure_data=True))
    assert all(row.figure is None for row in plain.tensors)
    plain_rows, shown_rows = plain.to_dict()["tensors"], shown.to_dict()["tensors"]
    assert all("figure" not in row for row in plain_rows)
    assert sum("figure" in row for row in shown_rows) == 6
    assert [set(row) - {"figure"} for row in shown_rows] == [set(row) for row in plain_rows]


# -- import discipline and the missing extra --------------------------------------------------

def test_import_minigraph_and_computing_figure_data_never_import_matplotlib():
    code = ("import sys, minigraph, minigraph.plot, minigraph.plotfile\n"
            "from minigraph.compress import Options, plan_compression\n"
            "g = minigraph.read_graph(sys.argv[1])\n"
            "plan_compression(g, Options(n_clusters=4, figure_data=True))\n"
            "print('matplotlib' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(FIXTURES / "mlp_digits.pb")],
                         capture_output=True, text=True, check=True,
                         env=_env())
    assert out.stdout.strip() == "False"


def test_without_matplotlib_plotting_fails_with_one_line_naming_the_extra(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(PlotError) as caught:
        plot_file(FIXTURES / "mlp_digits.pb", tmp_path / "out.png", k=4)
    assert str(caught.value) == f"{FIXTURES / 'mlp_digits.pb'}: {MISSING_EXTRA}"
    assert "\n" not in str(caught.value) and "minigraph[plot]" in str(caught.value)
    assert not (tmp_path / "out.png").exists()


def test_bad_output_suffix_and_unmatched_patterns_are_refused(tmp_path):
    with pytest.raises(PlotError, match=r"unknown figure format '\.gif'"):
        plot_file(FIXTURES / "mlp_digits.pb", tmp_path / "out.gif")
    with pytest.raises(PlotError, match="no float Const .* matches --tensor nothing\\*"):
        plot_file(FIXTURES / "mlp_digits.pb", tmp_path / "out.png", patterns=["nothing*"])
    with pytest.raises(PlotError, match="nothing to draw"):
        draw({"file": "x.pb", "tensors": []}, tmp_path / "out.png")


def test_the_default_figure_sits_beside_the_input():
    assert default_figure("models/net.pb") == Path("models/net.pb.png")
    assert default_figure("models/saved/") == Path("models/saved.png")


# -- the drawing ------------------------------------------------------------------------------

def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk (PNG spec, section 11.2.2)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@needs_matplotlib
def test_png_is_written_with_a_sensible_size_and_is_not_blank(tmp_path):
    from matplotlib.image import imread

    out = tmp_path / "mlp.png"
    result = plot_file(FIXTURES / "mlp_digits.pb", out, k=16)
    data = out.read_bytes()
    width, height = _png_size(data)
    assert 1000 <= width <= 2000 and 600 <= height <= 1600
    assert len(data) > 30_000
    pixels = imread(out)[..., :3].reshape(-1, 3)
    assert pixels.std() > 0.05
    assert len(np.unique((pixels * 255).round().astype(np.uint8), axis=0)) > 20
    assert result["figure"] == str(out) and result["output"] is None


@needs_matplotlib
def test_svg_names_the_tensors_and_is_the_same_bytes_every_time(tmp_path):
    result = plot_file(FIXTURES / "cnn_digits.pb", tmp_path / "a.svg", k=16)
    text = (tmp_path / "a.svg").read_text()
    for name in CNN_SHOWN:
        assert f">{name}<" in text
    assert "without their common ending '/ReadVariableOp/resource'" in text
    draw(result, tmp_path / "b.svg")
    script = ("import sys; from minigraph.plotfile import plot_file; "
              "plot_file(sys.argv[1], sys.argv[2], k=16)")
    subprocess.run([sys.executable, "-c", script, str(FIXTURES / "cnn_digits.pb"),
                    str(tmp_path / "c.svg")], check=True, env=_env())
    assert (tmp_path / "b.svg").read_bytes() == (tmp_path / "a.svg").read_bytes()
    assert (tmp_path / "c.svg").read_bytes() == (tmp_path / "a.svg").read_bytes()


@needs_matplotlib
def test_long_names_appear_shortened_in_the_svg(tmp_path):
    rng = np.random.default_rng(3)
    names = [f"model/encoder_stack_{i}/attention_block/query_projection_{i}" for i in range(3)]
    graph_def = _graph(**{name: rng.normal(size=300 + i).astype(np.float32)
                          for i, name in enumerate(names)})
    report, _ = plan_compression(graph_def, Options(n_clusters=4, figure_data=True))
    draw(report.to_dict(), tmp_path / "long.svg")
    text = (tmp_path / "long.svg").read_text()
    # 30 characters: the first 15, "…", the last 14 (by hand).
    for i in range(3):
        assert f">model/encoder_s…y_projection_{i}<" in text
        assert names[i] not in text


@needs_matplotlib
def test_bytes_after_measured_by_the_run_win_over_the_values_form(tmp_path):
    # A run that writes the palette form records each row's own bytes_after (its nodes).
    report, _ = plan_compression(_graph(w=_HAND), Options(n_clusters=4, figure_data=True))
    result = report.to_dict()
    draw(result, tmp_path / "values.svg")
    result["tensors"][0]["bytes_after"] = 123
    draw(result, tmp_path / "palette.svg")
    values, palette = ((tmp_path / name).read_text() for name in ("values.svg", "palette.svg"))
    assert ">stored bytes: 2.0 KiB → 2.0 KiB (tensors shown)<" in values
    assert ">stored bytes: 2.0 KiB → 123 B (tensors shown)<" in palette


@needs_matplotlib
def test_a_compression_run_with_figure_data_draws_its_own_result(tmp_path):
    # The route of `minigraph FILE --plot OUT`: compress_file's dict goes straight to draw.
    result = compress_file(FIXTURES / "mlp_digits.pb", tmp_path / "mlp.min.pb",
                           options=Options(n_clusters=8, figure_data=True))
    draw(result, tmp_path / "run.svg")
    text = (tmp_path / "run.svg").read_text()
    assert "k = 8" in text and "3 of 6 consts clustered" in text
    before, after = format_bytes(result["bytes_before"]), format_bytes(result["bytes_after"])
    assert f"file {before} → {after}" in text


@needs_matplotlib
def test_pdf_output_and_a_savedmodel_directory(tmp_path):
    result = plot_file(FIXTURES / "savedmodels" / "digits_keras", tmp_path / "sm.pdf", k=8)
    assert (tmp_path / "sm.pdf").read_bytes()[:5] == b"%PDF-"
    plot_file(str(FIXTURES / "savedmodels" / "digits_keras") + os.sep, tmp_path / "sm.svg", k=8)
    assert ">digits_keras: k = 8, " in (tmp_path / "sm.svg").read_text()
    shown = [row["name"] for row in result["tensors"] if "figure" in row]
    assert any(name.endswith("/.ATTRIBUTES/VARIABLE_VALUE") for name in shown)


@needs_matplotlib
def test_an_already_compressed_file_is_drawn_with_its_own_values(tmp_path):
    small = tmp_path / "mlp.k16.pb"
    compress_file(FIXTURES / "mlp_digits.pb", small, options=Options(n_clusters=16))
    result = plot_file(small, tmp_path / "again.png", k=16)
    graph_def = read_graph(small)
    stored = {node.name: to_array(node.attr["value"].tensor) for node in graph_def.node
              if node.op == "Const"}
    rows = [row for row in result["tensors"] if "figure" in row and row["elements"] >= 256]
    assert rows and not any(row["clustered"] for row in rows)
    for row in rows:
        assert row["figure"]["codebook"] == np.unique(stored[row["name"]]).tolist()
        assert row["figure"]["chosen"] == {"bits": 4, "sqnr_db": None}


@needs_matplotlib
def test_drawing_works_where_home_is_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {k: v for k, v in _env().items()
           if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env["HOME"] = str(blocker / "home")
    script = ("import os, sys; from minigraph.plotfile import plot_file; "
              "plot_file(sys.argv[1], sys.argv[2], k=4); print(os.environ['MPLCONFIGDIR'])")
    out = subprocess.run([sys.executable, "-c", script, str(FIXTURES / "mlp_digits.pb"),
                          str(tmp_path / "ro.png")], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stderr == ""  # matplotlib did not warn about an unwritable config dir
    assert os.path.basename(out.stdout.strip()).startswith("minigraph-matplotlib-")
    assert _png_size((tmp_path / "ro.png").read_bytes())[0] > 1000
