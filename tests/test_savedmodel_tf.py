"""Compressed SavedModels loaded and served by real TensorFlow (skipped where it is not installed).

Golden facts (accuracy, outputs, variable dtypes and shapes) are those TensorFlow reported when
it made the fixtures (tests/fixtures/savedmodels/expected.json).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minigraph.compress import Options
from minigraph.savedmodel import compress_savedmodel

from conftest import FIXTURES

pytestmark = pytest.mark.tensorflow
SAVEDMODELS = FIXTURES / "savedmodels"


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


def _compressed(model: str, tmp_path: Path, k: int) -> Path:
    out = tmp_path / f"{model}.k{k}"
    compress_savedmodel(SAVEDMODELS / model, out, Options(n_clusters=k))
    return out


@pytest.mark.parametrize("k, tolerance", [(256, 0.005), (16, 0.01)])
def test_digits_accuracy_kept(k, tolerance, tf, tmp_path, expected_savedmodels) -> None:
    facts = expected_savedmodels["digits_keras"]
    test = np.load(FIXTURES / facts["test_data"])
    model = tf.saved_model.load(str(_compressed("digits_keras", tmp_path, k)))
    outputs = model.signatures["serving_default"](**{facts["input_name"]: tf.constant(test["X"])})
    logits = outputs[facts["output_name"]].numpy()
    accuracy = float(np.mean(np.argmax(logits, axis=1) == test["y"]))
    assert accuracy >= facts["test_accuracy"] - tolerance, (accuracy, facts["test_accuracy"])


def test_mixed_module_serves_its_signature(tf, tmp_path, expected_savedmodels) -> None:
    facts = expected_savedmodels["module_mixed"]
    model = tf.saved_model.load(str(_compressed("module_mixed", tmp_path, 16)))
    x = np.asarray(facts["inputs"]["x"], np.float32)
    outputs = model.signatures["serving_default"](x=tf.constant(x))
    assert int(outputs["vocab_bytes"]) == facts["vocab_bytes"]  # the asset is found and read
    y, original = outputs["y"].numpy(), np.asarray(facts["outputs"]["y"], np.float32)
    assert y.shape == original.shape
    # 16 values per weight tensor: outputs move, but stay close (|x @ w| sums 32 products).
    assert 0 < np.max(np.abs(y - original)) < 2.0


@pytest.mark.parametrize("model", ["digits_keras", "module_mixed"])
@pytest.mark.parametrize("k", [16, 256])
def test_checkpoint_reads_with_dtypes_shapes_and_at_most_k_values(model, k, tf, tmp_path,
                                                                   expected_savedmodels) -> None:
    facts = expected_savedmodels[model]["variables"]
    reader = tf.train.load_checkpoint(str(_compressed(model, tmp_path, k) / "variables" / "variables"))
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    assert sorted(k for k in shapes if k != "_CHECKPOINTABLE_OBJECT_GRAPH") == sorted(facts)
    for key, fact in facts.items():
        assert (dtypes[key].as_datatype_enum, list(shapes[key])) == (fact["dtype"], fact["shape"])
        values = np.asarray(reader.get_tensor(key))
        if dtypes[key].is_floating and values.size >= 256:
            assert np.unique(values.astype(np.float64)).size <= k, key


def test_tensorflow_loads_without_fingerprint(tf, tmp_path) -> None:
    # The output has no fingerprint.pb: TensorFlow loads it, and reading the fingerprint says
    # there is none rather than returning the original model's.
    out = _compressed("module_mixed", tmp_path, 16)
    assert not (out / "fingerprint.pb").exists()
    tf.saved_model.load(str(out))
    with pytest.raises(Exception, match="fingerprint"):
        tf.saved_model.experimental.read_fingerprint(str(out))


def test_palettize_keeps_captured_constants_and_variables_as_values(tf, tmp_path,
                                                                   expected_savedmodels) -> None:
    facts = expected_savedmodels["module_mixed"]
    x = tf.constant(np.asarray(facts["inputs"]["x"], np.float32))
    served = []
    for palettize in (False, True):
        out = tmp_path / f"module_mixed.{palettize}"
        report = compress_savedmodel(SAVEDMODELS / "module_mixed", out,
                                     Options(n_clusters=16, min_n_weights=100,
                                             palettize=palettize))
        model = tf.saved_model.load(str(out))
        served.append(model.signatures["serving_default"](x=x)["y"].numpy())
    # TensorFlow restores a captured constant from its Const node and variables from the
    # checkpoint: neither can be a decode subgraph, and the model serves as the values form.
    rows = {row.name: row for row in report.tensors if row.clustered}
    assert "captured constant" in rows["Const"].palette_skipped
    assert all(row.palette_skipped for row in rows.values())
    assert served[0].tobytes() == served[1].tobytes()
