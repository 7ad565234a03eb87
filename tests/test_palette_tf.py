"""The palette form run by real TensorFlow (skipped where it is not installed).

Run by hand in a TensorFlow virtualenv: ``python -m pytest -m tensorflow tests/test_palette_tf.py``.
The reference is the values form (``compress`` without ``palettize``) run by the same TensorFlow,
single-threaded with oneDNN off (its kernels may pick other summation orders per graph).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from minigraph import compress, from_array, read_graph
from minigraph.palette import MARKER, palettize
from minigraph.schema import GraphDef

from conftest import FIXTURES, MODELS

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # read when TensorFlow is first imported
pytestmark = pytest.mark.tensorflow


def _session(graph_bytes: bytes, fold_bytes: int = 0):
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(tf.compat.v1.GraphDef.FromString(graph_bytes), name="")
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1,
                                      inter_op_parallelism_threads=1)
    config.graph_options.optimizer_options.max_folded_constant_in_bytes = fold_bytes  # 0: 10 MiB
    return tf.compat.v1.Session(graph=graph, config=config)


def _run(graph_bytes: bytes, feeds: dict, fetches: list[str]) -> list[np.ndarray]:
    with _session(graph_bytes) as session:
        return session.run(fetches, {name: np.asarray(v, np.float32) for name, v in feeds.items()})


def _identical(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object or b.dtype == object:
        return a.shape == b.shape and a.tolist() == b.tolist()
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _forms(model: str, k: int, shared: bool) -> tuple[bytes, bytes, list[str]]:
    """Values form, palette form, and the names palettized (all of them, or the test fails)."""
    graph_def, report = compress(read_graph(FIXTURES / model), n_clusters=k,
                                 global_clusters=shared)
    values_form = graph_def.SerializeToString(deterministic=True)
    names = [row.name for row in report.tensors if row.clustered]
    infos = palettize(graph_def, names, shared=shared)
    assert all(info.palettized for info in infos)
    return values_form, graph_def.SerializeToString(deterministic=True), names


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("k", [256, 16, 5, 2])
@pytest.mark.parametrize("shared", [False, True])
def test_palette_form_runs_bit_identical_to_the_values_form(model, k, shared, expected):
    facts = expected[model]
    values_form, palette_form, names = _forms(model, k, shared)
    node_names = {node.name for node in GraphDef.FromString(values_form).node}
    fetches = facts["output_names"] + [f"{name}:0" for name in names if name in node_names]
    assert len(fetches) > len(facts["output_names"]) or model == "tf2_functions.pb"
    got = _run(palette_form, facts["inputs"], fetches)
    want = _run(values_form, facts["inputs"], fetches)
    for name, a, b in zip(fetches, got, want, strict=False):
        assert _identical(a, b), name


def test_library_function_palettes_change_the_function_and_still_run(expected):
    facts = expected["tf2_functions.pb"]
    values_form, palette_form, names = _forms("tf2_functions.pb", 5, False)
    assert sum(name.startswith(("while_body", "cond_")) for name in names) == 3
    got = _run(palette_form, facts["inputs"], facts["output_names"])
    want = _run(values_form, facts["inputs"], facts["output_names"])
    assert all(_identical(a, b) for a, b in zip(got, want, strict=False))


def test_marker_attr_is_accepted_and_kept_by_import():
    values_form, palette_form, names = _forms("mlp_digits.pb", 16, False)
    with _session(palette_form) as session:
        marker = session.graph.get_operation_by_name(names[0]).get_attr(MARKER)
    assert len(marker) == 3 and marker[0].startswith(b"minigraph")


def _tflite(path, tmp_path) -> bytes:
    import tensorflow as tf

    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        str(path), input_arrays=["input"], output_arrays=["logits"], input_shapes={"input": [8, 64]})
    return converter.convert()


def _tflite_logits(model: bytes, batch: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=model, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize("model", ["mlp_digits.pb", "cnn_digits.pb"])
@pytest.mark.parametrize("k, shared", [(256, False), (16, False), (5, False), (2, False),
                                       (256, True)])
def test_tflite_converter_folds_the_palette_form_back(model, k, shared, expected, tmp_path):
    values_form, palette_form, _ = _forms(model, k, shared)
    (tmp_path / "values.pb").write_bytes(values_form)
    (tmp_path / "palette.pb").write_bytes(palette_form)
    from_palette = _tflite(tmp_path / "palette.pb", tmp_path)
    from_values = _tflite(tmp_path / "values.pb", tmp_path)
    # Folded back to dense weights: the same size within a little metadata, the same logits.
    assert abs(len(from_palette) - len(from_values)) < 2048
    batch = np.asarray(expected[model]["inputs"]["input:0"], np.float32)
    assert _identical(_tflite_logits(from_palette, batch), _tflite_logits(from_values, batch))


def _one_const_graph(n: int) -> GraphDef:
    graph_def = GraphDef()
    node = graph_def.node.add(name="w", op="Const")
    node.attr["dtype"].type = 1
    node.attr["value"].tensor.CopyFrom(from_array((np.arange(n) % 5).astype(np.float32)))
    graph_def.node.add(name="out", op="Identity", input=["w"]).attr["T"].type = 1
    palettize(graph_def, ["w"])
    return graph_def


@pytest.mark.parametrize("n, fold_bytes, folded", [(2_600_000, 0, True), (2_650_000, 0, False),
                                                   (2_650_000, 64 << 20, True)])
def test_session_folds_the_decode_into_a_const_up_to_10_mib(n, fold_bytes, folded):
    import tensorflow as tf

    with _session(_one_const_graph(n).SerializeToString(), fold_bytes) as session:
        metadata = tf.compat.v1.RunMetadata()
        value = session.run("out:0", options=tf.compat.v1.RunOptions(output_partition_graphs=True),
                            run_metadata=metadata)
    ops = {node.op for graph in metadata.partition_graphs for node in graph.node}
    assert ("GatherV2" not in ops) == folded, sorted(ops)
    assert _identical(value, (np.arange(n) % 5).astype(np.float32))  # decoded at run time too


def test_tf2onnx_folds_the_palette_form_back(expected):
    tf2onnx = pytest.importorskip("tf2onnx", reason="needs tf2onnx and onnxruntime")
    ort = pytest.importorskip("onnxruntime", reason="needs tf2onnx and onnxruntime")
    import tensorflow as tf

    values_form, palette_form, _ = _forms("mlp_digits.pb", 16, False)
    batch = np.asarray(expected["mlp_digits.pb"]["inputs"]["input:0"], np.float32)
    logits, ops = [], []
    for data in (values_form, palette_form):
        model, _ = tf2onnx.convert.from_graph_def(
            tf.compat.v1.GraphDef.FromString(data), input_names=["input:0"],
            output_names=["logits:0"], opset=13)
        ops.append(sorted({node.op_type for node in model.graph.node}))
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        logits.append(session.run(None, {"input:0": batch})[0])
    assert ops[1] == ops[0] == ["Add", "MatMul", "Relu"]  # no decode op left
    assert _identical(logits[1], logits[0])


def test_opencv_rejects_the_palette_form_and_takes_it_expanded(tmp_path):
    cv2 = pytest.importorskip("cv2", reason="needs opencv-python-headless")
    from minigraph.palette import expand

    values_form, palette_form, _ = _forms("mlp_digits.pb", 256, False)
    (tmp_path / "palette.pb").write_bytes(palette_form)
    with pytest.raises(cv2.error, match="data type is not supported"):
        cv2.dnn.readNetFromTensorflow(str(tmp_path / "palette.pb"))
    graph_def = GraphDef.FromString(palette_form)
    expand(graph_def)
    (tmp_path / "expanded.pb").write_bytes(graph_def.SerializeToString(deterministic=True))
    cv2.dnn.readNetFromTensorflow(str(tmp_path / "expanded.pb"))


def _tf1_while_loop_graph() -> GraphDef:
    """A graph whose loop body reads a Const (TF1 control flow: the Const's control input from
    the loop's pivot places it in the loop's frame)."""
    import tensorflow as tf

    tf.compat.v1.disable_control_flow_v2()
    try:
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [3000], name="x")

            def body(i, h):
                w = tf.constant((np.arange(3000) % 7).astype(np.float32) * 0.25, name="w")
                return i + 1, h * 0.5 + w

            _, out = tf.compat.v1.while_loop(lambda i, h: i < 3, body, [tf.constant(0), x])
            tf.identity(out, name="out")
    finally:
        tf.compat.v1.enable_control_flow_v2()
    return GraphDef.FromString(graph.as_graph_def().SerializeToString())


def test_a_const_in_a_tf1_while_loop_frame_keeps_working():
    graph_def = _tf1_while_loop_graph()
    values_form = graph_def.SerializeToString()
    (const,) = [node for node in graph_def.node if node.name == "while/w"]
    assert list(const.input) == ["^while/Identity"]
    (info,) = palettize(graph_def, ["while/w"])
    assert info.palettized and info.bits == 3
    feeds = {"x:0": np.linspace(-1, 1, 3000)}
    want = _run(values_form, feeds, ["out:0"])
    got = _run(graph_def.SerializeToString(), feeds, ["out:0"])
    assert _identical(got[0], want[0])
