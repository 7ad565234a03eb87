"""Compressed fixtures imported and run by real TensorFlow (skipped where it is not installed).

Run by hand in a TensorFlow virtualenv: ``pip install tensorflow-cpu && python -m pytest -m
tensorflow``. Golden outputs and accuracies are the ones TensorFlow measured on the originals.
"""

from __future__ import annotations

import numpy as np
import pytest

from minigraph import compress, read_graph

from conftest import FIXTURES, MODELS, digest_values

pytestmark = pytest.mark.tensorflow


def _run_in_tf(graph_bytes: bytes, feeds: dict, fetches: list[str]) -> list[np.ndarray]:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(graph_bytes)
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run(fetches, {name: np.asarray(v, np.float32) for name, v in feeds.items()})


def _compressed(model: str, **options) -> bytes:
    out, _ = compress(read_graph(FIXTURES / model), **options)
    return out.SerializeToString(deterministic=True)


@pytest.mark.parametrize("model", MODELS)
def test_original_fixture_reproduces_tensorflows_stored_outputs(model, expected):
    facts = expected[model]
    got = _run_in_tf((FIXTURES / model).read_bytes(), facts["inputs"], facts["output_names"])
    for name, value in zip(facts["output_names"], got, strict=True):
        if "outputs" in facts:
            np.testing.assert_allclose(value, np.asarray(facts["outputs"][name]), rtol=1e-4,
                                       atol=2e-5)
        else:  # encodings.pb: every Const fetched through an Identity, stored as hashes
            assert digest_values(value) == facts["output_sha256"][name], name


@pytest.mark.parametrize("model", MODELS)
def test_compressed_fixture_imports_and_runs_close_to_the_original(model, expected):
    facts = expected[model]
    got = _run_in_tf(_compressed(model, n_clusters=256), facts["inputs"], facts["output_names"])
    if "outputs" not in facts:  # encodings.pb: outputs are the Consts; unclustered ones unchanged
        _, report = compress(read_graph(FIXTURES / model), n_clusters=256)
        kept = {f"out/{row.name}:0" for row in report.tensors if not row.clustered}
        for name, value in zip(facts["output_names"], got, strict=True):
            if name in kept:
                assert digest_values(value) == facts["output_sha256"][name], name
        return
    for name, value in zip(facts["output_names"], got, strict=True):
        reference = np.asarray(facts["outputs"][name])
        scale = np.abs(reference).max()
        assert np.abs(value - reference).max() <= 0.05 * scale, name


@pytest.mark.parametrize("model", ["mlp_digits.pb", "cnn_digits.pb"])
@pytest.mark.parametrize("global_clusters", [False, True])
def test_digits_accuracy_stays_within_half_a_point_at_k256(model, global_clusters, expected):
    data = np.load(FIXTURES / expected[model]["test_data"])
    graph_bytes = _compressed(model, n_clusters=256, global_clusters=global_clusters)
    (logits,) = _run_in_tf(graph_bytes, {"input:0": data["X"]}, ["logits:0"])
    accuracy = float(np.mean(np.argmax(logits, axis=1) == data["y"]))
    assert accuracy >= expected[model]["test_accuracy"] - 0.005
