"""SavedModel directories without TensorFlow: what changes, what stays byte for byte, errors."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from minigraph import codec
from minigraph.bundle import read_bundle
from minigraph.compress import Options
from minigraph.errors import BundleError, SavedModelError
from minigraph.graph import iter_consts
from minigraph.savedmodel import compress_savedmodel, read_savedmodel
from minigraph.savedmodel_summary import inspect_savedmodel

from conftest import FIXTURES

SAVEDMODELS = FIXTURES / "savedmodels"
MIXED, DIGITS = SAVEDMODELS / "module_mixed", SAVEDMODELS / "digits_keras"
VARIABLES = "variables/variables"
FLOAT_NAMES = {"DT_HALF", "DT_BFLOAT16", "DT_FLOAT", "DT_DOUBLE"}


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _float_values(bundle, key: str) -> np.ndarray:
    values = bundle.array(key)
    if bundle.entries[key].dtype == 14:
        values = codec.bfloat16_to_float32(values)
    return values


def _distinct_by_key(directory: Path) -> dict[str, int]:
    """Distinct finite values of every float variable and float Const of a SavedModel."""
    saved_model, bundle = read_savedmodel(directory)
    counts = {}
    for key, entry in bundle.entries.items():
        if entry.dtype in (1, 2, 14, 19):
            values = _float_values(bundle, key)
            counts[key] = np.unique(values[np.isfinite(values)]).size
    for ref in iter_consts(saved_model.meta_graphs[0].graph_def):
        if ref.tensor.dtype in (1, 2, 14, 19):
            counts[ref.name] = np.unique(codec.to_array(ref.tensor)).size
    return counts


@pytest.fixture(scope="module")
def mixed_k16(tmp_path_factory) -> Path:
    before = _digests(MIXED)
    out = tmp_path_factory.mktemp("out") / "mixed.min"
    compress_savedmodel(MIXED, out, Options(n_clusters=16))
    assert _digests(MIXED) == before, "the input changed"
    return out


def test_float_variables_and_constant_are_clustered(mixed_k16: Path) -> None:
    counts = _distinct_by_key(mixed_k16)
    for key in ("w32", "w16", "w64", "wbf16"):
        assert counts[f"{key}/.ATTRIBUTES/VARIABLE_VALUE"] <= 16, key
    assert counts["Const"] <= 16  # the constant captured by the tf.function (300 values)
    assert counts["small/.ATTRIBUTES/VARIABLE_VALUE"] == 8  # fewer than 256 weights: untouched


def test_everything_else_is_byte_identical(mixed_k16: Path) -> None:
    assert (mixed_k16 / "assets" / "vocab.txt").read_bytes() == (MIXED / "assets" / "vocab.txt").read_bytes()
    ours, theirs = read_bundle(mixed_k16 / VARIABLES), read_bundle(MIXED / VARIABLES)
    for key in ("counts/.ATTRIBUTES/VARIABLE_VALUE", "small/.ATTRIBUTES/VARIABLE_VALUE",
                "_CHECKPOINTABLE_OBJECT_GRAPH"):
        assert bytes(ours.data(key)) == bytes(theirs.data(key)), key
        assert ours.entries[key] == theirs.entries[key], key
    for key, entry in theirs.entries.items():  # layout kept: same offsets, sizes, dtypes, shapes
        mine = ours.entries[key]
        assert (mine.offset, mine.size, mine.dtype, mine.shape) == (entry.offset, entry.size,
                                                                    entry.dtype, entry.shape)
    saved, original = read_savedmodel(mixed_k16)[0], read_savedmodel(MIXED)[0]
    assert saved.meta_graphs[0].object_graph_def == original.meta_graphs[0].object_graph_def
    assert saved.meta_graphs[0].signature_def == original.meta_graphs[0].signature_def


def test_stale_fingerprint_is_dropped(mixed_k16: Path) -> None:
    assert (MIXED / "fingerprint.pb").exists() and not (mixed_k16 / "fingerprint.pb").exists()


def test_untouched_saved_model_pb_is_copied_and_fingerprint_kept(tmp_path: Path) -> None:
    # The Keras export's Consts are all strings and int32 scalars: only variables change.
    compress_savedmodel(DIGITS, tmp_path / "a", Options(n_clusters=16))
    assert (tmp_path / "a" / "saved_model.pb").read_bytes() == (DIGITS / "saved_model.pb").read_bytes()
    # Nothing to do at all (every tensor whitelisted): the whole directory is a copy.
    report = compress_savedmodel(DIGITS, tmp_path / "b", Options(whitelisted=("*",)))
    assert _digests(tmp_path / "b") == _digests(DIGITS)
    assert report.files["fingerprint"] == "kept" and not report.clustered


def test_second_run_changes_nothing(mixed_k16: Path, tmp_path: Path) -> None:
    compress_savedmodel(mixed_k16, tmp_path / "again", Options(n_clusters=16))
    assert _digests(tmp_path / "again") == _digests(mixed_k16)


@pytest.mark.parametrize("pattern, key", [
    ("w32", "w32/.ATTRIBUTES/VARIABLE_VALUE"),                      # object path
    ("w1?/.ATTRIBUTES/*", "w16/.ATTRIBUTES/VARIABLE_VALUE"),        # checkpoint key pattern
])
def test_whitelist_by_object_path_or_checkpoint_key(pattern: str, key: str, tmp_path: Path) -> None:
    report = compress_savedmodel(MIXED, tmp_path / "out", Options(n_clusters=16,
                                                                  whitelisted=(pattern,)))
    rows = {row.name: row for row in report.tensors}
    assert rows[key].skipped == "whitelisted"
    assert sum(row.skipped == "whitelisted" for row in report.tensors) == 1
    assert report.whitelisted == [pattern]
    ours, theirs = read_bundle(tmp_path / "out" / VARIABLES), read_bundle(MIXED / VARIABLES)
    assert bytes(ours.data(key)) == bytes(theirs.data(key))


def test_whitelist_by_variable_name(tmp_path: Path) -> None:
    # Keras stores each weight under two keys; the variable's name reaches both.
    report = compress_savedmodel(DIGITS, tmp_path / "out", Options(
        n_clusters=16, whitelisted=("sequential/dense1/kernel",)))
    skipped = sorted(row.name for row in report.tensors if row.skipped == "whitelisted")
    assert skipped == ["_all_variables/3/.ATTRIBUTES/VARIABLE_VALUE",
                       "variables/0/.ATTRIBUTES/VARIABLE_VALUE"]


def test_global_codebook_spans_variables_and_consts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    compress_savedmodel(MIXED, out, Options(n_clusters=16, global_clusters=True))
    saved_model, bundle = read_savedmodel(out)
    pooled = [np.unique(_float_values(bundle, key).astype(np.float64))
              for key in ("w32", "w16", "w64", "wbf16") for key in [f"{key}/.ATTRIBUTES/VARIABLE_VALUE"]]
    const = {ref.name: ref for ref in iter_consts(saved_model.meta_graphs[0].graph_def)}["Const"]
    pooled.append(codec.to_array(const.tensor).astype(np.float64))
    # One codebook, each centroid rounded through all four dtypes: at most 16 values in all.
    assert np.unique(np.concatenate(pooled)).size <= 16


def test_inspect_lists_variables_and_consts(expected_savedmodels: dict) -> None:
    result = inspect_savedmodel(MIXED)
    variables = {row["key"]: row for row in result["variables"]}
    for key, fact in expected_savedmodels["module_mixed"]["variables"].items():
        assert variables[key]["shape"] == fact["shape"]
    assert variables["w32/.ATTRIBUTES/VARIABLE_VALUE"]["object_path"] == "w32"
    assert variables["w32/.ATTRIBUTES/VARIABLE_VALUE"]["distinct_values"] == 512
    consts = {c["name"]: c for c in result["meta_graphs"][0]["consts"]}
    assert consts["Const"]["dtype"] == "DT_FLOAT" and consts["Const"]["elements"] == 300
    assert sorted(result["files"]) == expected_savedmodels["module_mixed"]["files"]
    keras = {row["key"]: row for row in inspect_savedmodel(DIGITS)["variables"]}
    assert keras["variables/0/.ATTRIBUTES/VARIABLE_VALUE"]["name"] == "sequential/dense1/kernel"


def test_existing_output_refused_unless_forced(mixed_k16: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("x")
    with pytest.raises(SavedModelError, match="already exists"):
        compress_savedmodel(MIXED, out)
    compress_savedmodel(MIXED, out, Options(n_clusters=16), force=True)
    assert not (out / "old").exists() and _digests(out) == _digests(mixed_k16)


def test_output_overlapping_input_refused(tmp_path: Path) -> None:
    src = tmp_path / "model"
    shutil.copytree(MIXED, src)
    with pytest.raises(SavedModelError, match="inside"):
        compress_savedmodel(src, src / "out")
    with pytest.raises(SavedModelError, match="contain it"):
        compress_savedmodel(src, tmp_path, force=True)
    with pytest.raises(SavedModelError, match="cannot be the input"):
        compress_savedmodel(src, src, force=True)
    assert _digests(src) == _digests(MIXED)


def test_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    src = tmp_path / "model"
    shutil.copytree(MIXED, src)
    shard = src / "variables" / "variables.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch"):
        compress_savedmodel(src, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_failure_while_writing_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    def fail(*args) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("minigraph.savedmodel.write_bundle", fail)
    with pytest.raises(SavedModelError, match="cannot write .*out: No space left on device"):
        compress_savedmodel(MIXED, tmp_path / "out", Options(n_clusters=16))
    assert list(tmp_path.iterdir()) == []


def test_not_a_savedmodel(tmp_path: Path) -> None:
    with pytest.raises(SavedModelError, match="no saved_model.pb"):
        compress_savedmodel(tmp_path, tmp_path.parent / "out")
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff\xff")
    with pytest.raises(SavedModelError, match="not a SavedModel message"):
        inspect_savedmodel(tmp_path)


def test_savedmodel_without_variables(tmp_path: Path) -> None:
    src = tmp_path / "model"
    shutil.copytree(MIXED, src)
    shutil.rmtree(src / "variables")
    report = compress_savedmodel(src, tmp_path / "out", Options(n_clusters=16))
    assert [row.name for row in report.clustered] == ["Const"]
    assert not (tmp_path / "out" / "variables").exists()
    assert inspect_savedmodel(tmp_path / "out")["variables"] == []


def test_progress_counts_variables_and_consts(tmp_path: Path) -> None:
    calls = []
    compress_savedmodel(MIXED, tmp_path / "out", Options(n_clusters=16),
                        progress=lambda row, done, total: calls.append((done, total)))
    # w32 512 + w16 300 + w64 400 + wbf16 320 + the captured constant 300 weights.
    assert calls[0] == (0, 1832) and calls[-1] == (1832, 1832) and len(calls) == 6


def test_every_meta_graph_is_clustered(tmp_path: Path) -> None:
    # TF1 exports can hold several meta graphs (one per tag set) over one set of variables.
    src = tmp_path / "model"
    shutil.copytree(MIXED, src)
    saved_model = read_savedmodel(src)[0]
    second = saved_model.meta_graphs.add()
    second.CopyFrom(saved_model.meta_graphs[0])
    second.meta_info_def.tags[:] = ["other"]
    (src / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    report = compress_savedmodel(src, tmp_path / "out", Options(n_clusters=16))
    clustered = {row.name for row in report.clustered}
    assert {"Const", "meta_graph_1/Const", "w32/.ATTRIBUTES/VARIABLE_VALUE"} <= clustered
    out = read_savedmodel(tmp_path / "out")[0]
    for meta_graph in out.meta_graphs:
        const = {ref.name: ref for ref in iter_consts(meta_graph.graph_def)}["Const"]
        assert np.unique(codec.to_array(const.tensor)).size <= 16


def test_inspect_text_lists_variables_and_consts() -> None:
    from minigraph.report import render_inspect_savedmodel

    text = render_inspect_savedmodel(inspect_savedmodel(MIXED))
    lines = text.splitlines()
    w32 = next(line for line in lines if line.startswith("w32/.ATTRIBUTES/VARIABLE_VALUE"))
    assert w32.split()[1:6] == ["w32", "DT_FLOAT", "[32,16]", "512", "512"]
    assert any(line.startswith("meta graph 0 (tags serve)") for line in lines)
    assert any(line.split()[:4] == ["Const", "DT_FLOAT", "[300]", "300"] for line in lines)


def test_output_is_read_back_unless_told_not_to(tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = read_savedmodel

    def counting(path):
        calls.append(Path(path).name)
        return real(path)

    monkeypatch.setattr("minigraph.savedmodel.read_savedmodel", counting)
    compress_savedmodel(MIXED, tmp_path / "a", Options(n_clusters=16))
    compress_savedmodel(MIXED, tmp_path / "b", Options(n_clusters=16), verify=False)
    assert calls[0] == "module_mixed" and calls[1].startswith(".a.") and calls[2:] == ["module_mixed"]
