"""The command line as a user runs it: output streams, exit codes, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from minigraph.cli import main

from conftest import FIXTURES, MODELS


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minigraph", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("model", MODELS)
def test_inspect_runs_on_every_fixture(model, expected, capsys):
    assert main(["inspect", str(FIXTURES / model)]) == 0
    out = capsys.readouterr().out
    for name in expected[model]["consts"]:
        assert name in out


def test_inspect_json_is_one_object_with_facts_tensorflow_reported(expected, capsys):
    assert main(["inspect", "--json", str(FIXTURES / "encodings.pb")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["format_version"] == 1 and result["failed"] == 0
    consts = {c["name"]: c for c in result["files"][0]["consts"]}
    facts = expected["encodings.pb"]["consts"]
    assert sorted(consts) == sorted(facts)
    for name, fact in facts.items():
        assert consts[name]["dtype"] == fact["dtype"]
        assert consts[name]["shape"] == fact["shape"]
        assert consts[name]["elements"] == fact["num_elements"]


def test_inspect_reports_encodings_and_distinct_values_of_hand_made_tensors(tmp_path, capsys):
    (tmp_path / "g.pbtxt").write_text("""
      node { name: 'splat' op: 'Const' attr { key: 'value' value { tensor {
        dtype: DT_FLOAT tensor_shape { dim { size: 1048576 } dim { size: 1048576 } }
        float_val: 0.5 } } } }
      node { name: 'padded' op: 'Const' attr { key: 'value' value { tensor {
        dtype: DT_FLOAT tensor_shape { dim { size: 10 } } float_val: 1 float_val: 2 float_val: 2
        float_val: 3 } } } }
      node { name: 'zeros' op: 'Const' attr { key: 'value' value { tensor {
        dtype: DT_DOUBLE tensor_shape { dim { size: 4 } } } } } }
    """)
    assert main(["inspect", "--json", str(tmp_path / "g.pbtxt")]) == 0
    consts = {c["name"]: c for c in json.loads(capsys.readouterr().out)["files"][0]["consts"]}
    assert (consts["splat"]["encoding"], consts["splat"]["elements"],
            consts["splat"]["distinct_values"]) == ("splat", 2**40, 1)
    assert (consts["padded"]["encoding"], consts["padded"]["distinct_values"]) == ("padded", 3)
    assert (consts["zeros"]["encoding"], consts["zeros"]["distinct_values"]) == ("zeros", 1)


def test_bad_file_gives_one_error_line_exit_1_and_no_traceback(tmp_path):
    (tmp_path / "bad.pb").write_bytes(b"\x0a\xff\xff\xff\xff\x0f")
    result = run("inspect", tmp_path / "bad.pb", FIXTURES / "mlp_digits.pb")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minigraph: error: ")
    assert str(tmp_path / "bad.pb") in lines[0]
    assert "Traceback" not in result.stderr
    assert "mlp_digits.pb" in result.stdout  # the good file is still reported


def test_inconsistent_tensor_error_names_file_and_node(tmp_path):
    (tmp_path / "g.pbtxt").write_text("""node { name: 'w' op: 'Const' attr { key: 'value'
        value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 3 } }
        tensor_content: "abcd" } } } }""")
    result = run("inspect", tmp_path / "g.pbtxt")
    assert result.returncode == 1
    assert "g.pbtxt" in result.stderr and "node 'w'" in result.stderr
    assert "4 bytes, expected 12" in result.stderr


def test_missing_file_exit_1():
    result = run("inspect", "/nonexistent/model.pb")
    assert result.returncode == 1 and "/nonexistent/model.pb: cannot read" in result.stderr


@pytest.mark.parametrize("args", [["inspect"], ["inspect", "--no-such-flag", "x.pb"]])
def test_usage_errors_exit_2(args):
    result = run(*args)
    assert result.returncode == 2 and "usage" in result.stderr


def test_version_and_help_exit_0():
    from minigraph import __version__
    assert run("inspect", "--version").stdout.strip() == f"minigraph {__version__}"
    helped = run("inspect", "--help")
    assert helped.returncode == 0 and "exit codes" in helped.stdout


# ---- compression ---------------------------------------------------------------------------

def _copy(tmp_path, model="mlp_digits.pb"):
    target = tmp_path / model
    target.write_bytes((FIXTURES / model).read_bytes())
    return target


def test_compress_writes_file_dot_min_and_leaves_the_input_alone(tmp_path):
    model = _copy(tmp_path)
    before = model.read_bytes()
    result = run(model)
    assert result.returncode == 0, result.stderr
    assert model.read_bytes() == before
    assert (tmp_path / "mlp_digits.pb.min").exists()
    assert "clustered" in result.stdout and "-> " in result.stdout
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_json_report_is_one_object_with_sizes_and_sorted_tensors(tmp_path):
    model = _copy(tmp_path)
    result = run(model, "--json", "--gzip", "-k", "16")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format_version"] == 1 and report["failed"] == []
    entry = report["files"][0]
    names = [t["name"] for t in entry["tensors"]]
    assert names == sorted(names)
    assert entry["bytes_before"] == model.stat().st_size
    assert entry["bytes_after"] == (tmp_path / "mlp_digits.pb.min").stat().st_size
    assert entry["gzip_bytes_after"] < entry["gzip_bytes_before"]
    assert entry["options"]["n_clusters"] == 16
    assert entry["verified"] is True


def test_the_2016_flag_spellings_and_their_kebab_twins(tmp_path):
    model = _copy(tmp_path)
    for flags in (["--n_clusters=8", "--min_n_weights=1000", "--global_clusters",
                   "--whitelisted=dense2/MatMul/ReadVariableOp/resource,dense3/*"],
                  ["--n-clusters=8", "--min-n-weights=1000", "--global-clusters",
                   "--whitelisted", "dense2/MatMul/ReadVariableOp/resource",
                   "--whitelisted", "dense3/*"]):
        result = run(model, "--json", "--force", *flags)
        assert result.returncode == 0, result.stderr
        entry = json.loads(result.stdout)["files"][0]
        assert entry["options"]["global_clusters"] is True
        rows = {t["name"]: t for t in entry["tensors"]}
        assert rows["dense1/MatMul/ReadVariableOp/resource"]["clustered"]
        assert rows["dense1/MatMul/ReadVariableOp/resource"]["distinct_after"] <= 8
        assert rows["dense2/MatMul/ReadVariableOp/resource"]["skipped"] == "whitelisted"
        assert rows["dense3/MatMul/ReadVariableOp/resource"]["skipped"] == "whitelisted"
        assert rows["dense1/add/ReadVariableOp/resource"]["skipped"].startswith("too small")


def test_existing_output_is_refused_without_force(tmp_path):
    model = _copy(tmp_path)
    out = tmp_path / "mlp_digits.pb.min"
    out.write_bytes(b"keep me")
    result = run(model)
    assert result.returncode == 1 and "already exists" in result.stderr
    assert out.read_bytes() == b"keep me"
    assert run(model, "--force").returncode == 0
    assert out.read_bytes() != b"keep me"


def test_output_over_the_input_is_refused_even_with_force(tmp_path):
    model = _copy(tmp_path)
    before = model.read_bytes()
    result = run(model, "-o", model, "--force")
    assert result.returncode == 1 and "input file itself" in result.stderr
    assert model.read_bytes() == before


def test_one_bad_file_fails_alone_and_nothing_is_written_for_it(tmp_path):
    good = _copy(tmp_path)
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\x0a\xff\xff\xff\xff\x0f")
    result = run(bad, good, tmp_path / "missing.pb")
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("minigraph: error: ") for e in errors)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "bad.pb.min").exists() and (tmp_path / "mlp_digits.pb.min").exists()
    assert "2 of 3 files failed" in result.stdout


def test_unwritable_directory_exit_1_and_no_temp_files(tmp_path):
    model = _copy(tmp_path)
    result = run(model, "-o", tmp_path / "no_such_dir" / "out.pb")
    assert result.returncode == 1 and "cannot write" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp_digits.pb"]


def test_text_input_gives_text_output(tmp_path):
    from minigraph import read_graph, write_graph
    write_graph(read_graph(FIXTURES / "mlp_digits.pb"), tmp_path / "m.pbtxt")
    assert run(tmp_path / "m.pbtxt", "-k", "8").returncode == 0
    assert (tmp_path / "m.pbtxt.min").read_bytes().startswith(b"node {")


def test_output_is_identical_across_two_processes(tmp_path):
    model = _copy(tmp_path, "cnn_digits.pb")
    run(model, "-o", tmp_path / "a.pb", "--init", "random", "--seed", "3")
    run(model, "-o", tmp_path / "b.pb", "--init", "random", "--seed", "3")
    assert (tmp_path / "a.pb").read_bytes() == (tmp_path / "b.pb").read_bytes()


@pytest.mark.parametrize("args", [
    ["--n_clusters=0", "x.pb"], ["--n-clusters=many", "x.pb"], ["--method", "fast", "x.pb"],
    [], ["-o", "out.pb", "a.pb", "b.pb"],
])
def test_compress_usage_errors_exit_2(args, tmp_path):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_lists_exit_codes_and_2016_flags():
    result = run("--help")
    assert result.returncode == 0
    for word in ("exit codes", "--n_clusters", "--global_clusters", "--whitelisted",
                 "--min_n_weights", "--no-verify"):
        assert word in result.stdout


# ---- promises checked in-process (so coverage of cli.py counts them) -------------------------

def test_inspect_into_a_closed_pipe_exits_quietly(tmp_path):
    model = str(FIXTURES / "cnn_digits.pb")
    many = " ".join([model] * 100)  # far more report than a pipe buffers
    command = f"{sys.executable} -m minigraph inspect {many} | head -1; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert result.stdout.startswith(model)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.returncode == 1


def test_text_report_lists_skipped_consts_with_their_reasons(tmp_path, capsys):
    model = _copy(tmp_path)
    assert main([str(model), "-k", "16"]) == 0
    out = capsys.readouterr().out
    skipped = out[out.index("\nskipped"):]
    # The MLP's three biases have 128, 64 and 10 weights: fewer than the default 256.
    for name, size in (("dense1/add/ReadVariableOp/resource", 128),
                       ("dense2/add/ReadVariableOp/resource", 64),
                       ("dense3/add/ReadVariableOp/resource", 10)):
        line = next(line for line in skipped.splitlines() if line.startswith(name))
        assert f"too small ({size} < 256 weights)" in line
    assert "3 of 6 consts clustered" in out


@pytest.mark.parametrize("model", MODELS)
def test_inspect_text_totals_per_dtype_match_tensorflows_facts(model, expected, capsys):
    assert main(["inspect", str(FIXTURES / model)]) == 0
    out = capsys.readouterr().out
    rows = out.split("\n\n")[-1].splitlines()[2:]
    totals = {line.split()[0]: [int(word) for word in line.split()[1:3]] for line in rows}
    facts: dict[str, list[int]] = {}
    for fact in expected[model]["consts"].values():
        count = facts.setdefault(fact["dtype"], [0, 0])
        count[0] += 1
        count[1] += fact["num_elements"]
    assert {name: totals[name] for name in facts} == facts
    assert totals["all"] == [sum(c for c, _ in facts.values()), sum(n for _, n in facts.values())]


def test_quiet_and_not_quiet_print_nothing_on_stderr_without_a_terminal(tmp_path, capsys):
    model = _copy(tmp_path)
    assert main([str(model), "-q"]) == 0
    assert main([str(model), "--force"]) == 0
    assert capsys.readouterr().err == ""


def test_progress_bar_shows_on_a_terminal_unless_quiet(tmp_path, monkeypatch, capsys):
    model = _copy(tmp_path, "cnn_digits.pb")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    import tqdm

    shown = []
    real = tqdm.tqdm

    def spy(*args, **kwargs):
        shown.append(kwargs.get("total"))
        return real(*args, **{**kwargs, "delay": 0})
    monkeypatch.setattr(tqdm, "tqdm", spy)
    assert main([str(model), "-q"]) == 0 and shown == []
    assert main([str(model), "--force"]) == 0 and shown and shown[0] > 0


def test_report_to_text_matches_the_command_lines_table(tmp_path, capsys):
    from minigraph import compress, read_graph

    _, report = compress(read_graph(FIXTURES / "mlp_digits.pb"), n_clusters=16)
    text = report.to_text()
    assert text.splitlines()[0].split()[0] == "clustered"
    assert "3 of 6 consts clustered (17024 weights, k=16)" in text  # 64*128 + 128*64 + 64*10
    assert "skipped" in text


def test_bad_seed_and_workers_are_usage_errors_before_any_file_is_read(capsys):
    for flags in (["--seed", "-1"], ["--workers", "0"]):
        assert main([*flags, "/nonexistent/model.pb"]) == 2
        assert "cannot read" not in capsys.readouterr().err


# ---- SavedModel directories ----------------------------------------------------------------

def _copy_savedmodel(tmp_path, name="digits_keras"):
    import shutil

    target = tmp_path / name
    shutil.copytree(FIXTURES / "savedmodels" / name, target)
    return target


def test_a_savedmodel_directory_compresses_to_dir_dot_min(tmp_path, capsys):
    model = _copy_savedmodel(tmp_path)
    assert main([f"{model}/", "-k", "16", "--json"]) == 0  # a trailing slash still gives DIR.min
    entry = json.loads(capsys.readouterr().out)["files"][0]
    assert entry["output"] == str(tmp_path / "digits_keras.min")
    assert (tmp_path / "digits_keras.min" / "saved_model.pb").is_file()
    clustered = [t for t in entry["tensors"] if t["clustered"]]
    assert clustered and all(t["distinct_after"] <= 16 for t in clustered)
    assert entry["verified"] is True
    assert main([str(model)]) == 1
    assert "already exists (use --force to replace it)" in capsys.readouterr().err


def test_inspect_lists_a_savedmodels_variables(tmp_path, capsys, expected_savedmodels):
    model = FIXTURES / "savedmodels" / "module_mixed"
    assert main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{model}: ")
    rows = {line.split()[0]: line.split() for line in out.splitlines() if "/.ATTRIBUTES/" in line}
    for key, fact in expected_savedmodels["module_mixed"]["variables"].items():  # TF's facts
        shape = "[" + ",".join(str(d) for d in fact["shape"]) + "]"
        assert shape in rows[key], key


def test_a_directory_that_is_not_a_savedmodel_is_one_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"minigraph: error: {tmp_path / 'empty'}: ")
    assert "not a SavedModel" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


# ---- the palette form ------------------------------------------------------------------------

def test_palettize_then_expand_gives_the_values_form_byte_for_byte(tmp_path, capsys):
    model = _copy(tmp_path, "cnn_digits.pb")
    assert main([str(model), "-k", "16", "-o", str(tmp_path / "values.pb")]) == 0
    capsys.readouterr()
    assert main([str(model), "-k", "16", "--palettize", "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)["files"][0]
    palette_form = tmp_path / "cnn_digits.pb.min"
    assert entry["totals"]["palettized"] == 3 and entry["options"]["palettize"] is True
    # 16 values need 4 bits: the file itself shrinks (raw, before any zip).
    assert entry["bytes_after"] < 0.25 * entry["bytes_before"]
    rows = {t["name"]: t for t in entry["tensors"]}
    dense1 = rows["dense1/MatMul/ReadVariableOp/resource"]
    assert dense1["bytes_before"] == 512 * 64 * 4  # float32 tensor_content, hand-counted
    # 4 bits per index (32768 / 2 bytes), 16 palette floats, and a few small decode nodes.
    assert dense1["palette_bits"] == 4 and 512 * 64 // 2 < dense1["bytes_after"] < 512 * 64 // 2 + 4096
    assert main(["expand", str(palette_form)]) == 0
    assert "3 palettized tensors expanded" in capsys.readouterr().out
    expanded = tmp_path / "cnn_digits.pb.min.expanded"
    assert expanded.read_bytes() == (tmp_path / "values.pb").read_bytes()


def test_inspect_lists_palettized_tensors_and_compressing_again_changes_nothing(tmp_path,
                                                                                capsys):
    model = _copy(tmp_path, "mlp_digits.pb")
    assert main([str(model), "-k", "5", "--palettize", "-q"]) == 0
    capsys.readouterr()
    palette_form = tmp_path / "mlp_digits.pb.min"
    assert main(["inspect", "--json", str(palette_form)]) == 0
    result = json.loads(capsys.readouterr().out)["files"][0]
    palettes = {p["name"]: p for p in result["palettes"]}
    assert sorted(palettes) == [f"dense{i}/MatMul/ReadVariableOp/resource" for i in (1, 2, 3)]
    assert all(p["k"] == 5 and p["shape"] for p in palettes.values())
    assert palettes["dense1/MatMul/ReadVariableOp/resource"]["shape"] == [64, 128]
    assert result["totals"]["palettized"] == 3
    assert main([str(palette_form), "-k", "5", "--palettize", "-o", str(tmp_path / "again.pb")]) == 0
    assert (tmp_path / "again.pb").read_bytes() == palette_form.read_bytes()


def test_expand_of_a_file_without_palettes_is_the_same_graph(tmp_path, capsys):
    model = _copy(tmp_path)
    assert main(["expand", str(model), "-o", str(tmp_path / "out.pb")]) == 0
    assert "0 palettized tensors expanded" in capsys.readouterr().out
    assert (tmp_path / "out.pb").read_bytes() == model.read_bytes()  # fixtures are deterministic


def test_expand_usage_and_errors(tmp_path, capsys):
    assert main(["expand"]) == 2
    assert main(["expand", "-o", "x.pb", "a.pb", "b.pb"]) == 2
    assert main(["expand", str(tmp_path / "missing.pb")]) == 1
    assert "missing.pb: cannot read" in capsys.readouterr().err


# ---- pictures ----------------------------------------------------------------------------------

def test_plot_subcommand_and_compress_with_plot_write_figures(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="needs the plot extra: pip install '.[plot]'")
    model = _copy(tmp_path, "cnn_digits.pb")
    assert main(["plot", str(model), "-k", "16", "-o", str(tmp_path / "fig.svg")]) == 0
    svg = (tmp_path / "fig.svg").read_text()
    assert "dense1/MatMul" in svg and svg.startswith("<?xml")
    assert main([str(model), "-k", "16", "--plot", str(tmp_path / "run.png"), "--json"]) == 0
    entry = json.loads(capsys.readouterr().out.split("\n", 1)[1])["files"][0]
    assert entry["figure"] == str(tmp_path / "run.png")
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "cnn_digits.pb.min").is_file()


@pytest.mark.parametrize("args", [["plot", "m.pb", "-o", "x.gif"], ["m.pb", "--plot", "x.jpg"],
                                  ["a.pb", "b.pb", "--plot", "x.png"], ["plot"]])
def test_plot_usage_errors_exit_2_before_reading(args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert list(tmp_path.iterdir()) == []

@pytest.mark.parametrize("text", [
    "node { name: 'a' op: 'Const' attr { key: 'value' value { tensor { dtype: 100100 } } } }",
    "node { name: 'a\\nminigraph: error: forged' op: 'Const' attr { key: 'value' value { tensor {"
    " dtype: DT_FLOAT tensor_shape { dim { size: -1 } } } } } }",
    "node { name: 'a' op: 'Const' attr { key: 'value' value { tensor { dtype: DT_FLOAT"
    " tensor_shape { dim { size: 4294967297 } dim { size: 4294967296 } } float_val: 1 float_val: 2"
    " } } } }",
])
@pytest.mark.parametrize("command", [["inspect"], []])
def test_hostile_files_give_one_error_line_in_both_subcommands(text, command, tmp_path, capsys):
    path = tmp_path / "g.pbtxt"
    path.write_text(text)
    assert main([*command, str(path)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"minigraph: error: {path}: node 'a")


def test_inspect_never_expands_a_padded_list_declaring_gigabytes(tmp_path, capsys):
    # 5 doubles padded to 2**40 elements: 8 TiB if expanded; inspect reads what is stored.
    (tmp_path / "g.pbtxt").write_text(
        "node { name: 'pad' op: 'Const' attr { key: 'value' value { tensor { dtype: DT_DOUBLE "
        "tensor_shape { dim { size: 1099511627776 } } double_val: 1 double_val: 2 double_val: 3 "
        "double_val: 4 double_val: 5 } } } }")
    assert main(["inspect", "--json", str(tmp_path / "g.pbtxt")]) == 0
    (const,) = json.loads(capsys.readouterr().out)["files"][0]["consts"]
    assert (const["encoding"], const["elements"], const["distinct_values"]) == ("padded", 2**40, 5)


def test_group_size_with_a_per_tensor_budget_groups_every_tensor_it_splits(tmp_path, capsys):
    # cnn_digits.pb's clustered kernels have 32, 64 and 10 output channels: groups of 8
    # give 4, 8 and 2 palettes, and the report lists them beside each k.
    for flags in (["--bits-per-weight", "3"], ["--min-sqnr", "20"]):
        out = tmp_path / "out.pb"
        assert main(["--group-size", "8", "--palettize", *flags, "-o", str(out), "-f",
                     "--json", str(FIXTURES / "cnn_digits.pb")]) == 0
        (result,) = json.loads(capsys.readouterr().out)["files"]
        rows = [t for t in result["tensors"] if t["clustered"]]
        assert sorted((t["shape"][-1], t["groups"], t["group_size"]) for t in rows) == \
            [(10, 2, 8), (32, 4, 8), (64, 8, 8)]
        assert all(t["k"] and t["bits"] for t in rows)
        assert "group_sizes_tried" not in result["totals"]["budget"]
        if "--min-sqnr" in flags:  # the floor holds for grouped tensors too
            assert all(t["sqnr_db"] is None or t["sqnr_db"] >= 20 for t in rows)
