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
