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
