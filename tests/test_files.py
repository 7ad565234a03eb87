"""One file to one file: paths refused, reading limits, verification that can fail, atomic writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from minigraph import GraphError, pbfile
from minigraph.compress import Options
from minigraph.files import compress_file, default_output, inspect_file

from conftest import FIXTURES


def _copy(tmp_path, model="mlp_digits.pb"):
    target = tmp_path / model
    target.write_bytes((FIXTURES / model).read_bytes())
    return target


def _files(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_default_output_is_file_dot_min():
    assert str(default_output("a/b.pb")) == "a/b.pb.min"


def test_missing_input_with_an_existing_output_is_one_error_naming_the_input(tmp_path):
    (tmp_path / "gone.pb.min").write_bytes(b"old")
    with pytest.raises(GraphError) as info:
        compress_file(tmp_path / "gone.pb")
    assert str(info.value).startswith(f"{tmp_path / 'gone.pb'}: cannot read")
    assert (tmp_path / "gone.pb.min").read_bytes() == b"old"


def test_an_input_that_cannot_be_searched_for_is_one_error(tmp_path, monkeypatch):
    # Root ignores directory permissions, so the refusal the kernel would give is simulated.
    model = _copy(tmp_path)
    real_stat = os.stat

    def denied(path, *args, **kwargs):
        if os.fspath(path) == str(model):
            raise PermissionError(13, "Permission denied")
        return real_stat(path, *args, **kwargs)
    monkeypatch.setattr(os, "stat", denied)
    with pytest.raises(GraphError, match="cannot read: Permission denied"):
        compress_file(model)


def test_errors_name_the_input_not_the_default_output(tmp_path):
    model = _copy(tmp_path)
    (tmp_path / "mlp_digits.pb.min").mkdir()  # the output path exists and cannot be replaced
    with pytest.raises(GraphError) as info:
        compress_file(model, force=True)
    assert str(info.value).startswith(f"{model}: ")


def test_a_directory_that_is_no_savedmodel_is_refused(tmp_path):
    with pytest.raises(GraphError, match="not a SavedModel directory"):
        inspect_file(tmp_path)


def test_a_directory_where_a_file_is_read_is_refused(tmp_path):
    with pytest.raises(GraphError, match="is a directory, not a GraphDef file"):
        pbfile.read_bytes(tmp_path)


def test_endless_input_is_refused_once_it_passes_the_limit(monkeypatch):
    monkeypatch.setattr(pbfile, "MAX_PROTO_BYTES", 1 << 20)
    started = time.perf_counter()
    with pytest.raises(GraphError, match="2 GiB"):
        pbfile.read_bytes("/dev/zero")
    assert time.perf_counter() - started < 5


def test_a_regular_file_over_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    big = tmp_path / "big.pb"
    with open(big, "wb") as handle:  # sparse: 3 GiB on paper, nothing on disk
        handle.truncate(3 << 30)
    monkeypatch.setattr(pbfile, "MAX_PROTO_BYTES", 2**31 - 1)
    with pytest.raises(GraphError, match=r"3221225472 bytes, over protobuf's 2 GiB limit"):
        inspect_file(big)


def _corrupt_first_const_content(monkeypatch):
    """Make the writer put wrong bytes into the first clustered tensor (a plausible splice bug)."""
    from minigraph import files

    real = files.serialize_compressed

    def broken(graph_def, changes, **kwargs):
        chunks, expected = real(graph_def, changes, **kwargs)
        big = max(range(len(chunks)), key=lambda i: memoryview(chunks[i]).nbytes)
        data = bytearray(chunks[big])
        data[0] ^= 1
        chunks[big] = bytes(data)
        return chunks, expected
    monkeypatch.setattr(files, "serialize_compressed", broken)


def test_verification_catches_a_corrupted_const_and_nothing_is_written(tmp_path, monkeypatch):
    model = _copy(tmp_path)
    _corrupt_first_const_content(monkeypatch)
    with pytest.raises(GraphError, match="verification failed"):
        compress_file(model, options=Options(n_clusters=8))
    assert _files(tmp_path) == ["mlp_digits.pb"]


def test_verification_catches_a_change_outside_the_consts(tmp_path, monkeypatch):
    from minigraph import files

    model = _copy(tmp_path)
    real = files.serialize_compressed

    def renamed(graph_def, changes, **kwargs):
        graph_def.node[0].device = "/device:CPU:0"  # written, but not what was meant
        chunks, expected = real(graph_def, changes, **kwargs)
        graph_def.node[0].device = ""
        return chunks, expected
    monkeypatch.setattr(files, "serialize_compressed", renamed)
    with pytest.raises(GraphError, match="outside the Const values"):
        compress_file(model, options=Options(n_clusters=8))
    assert _files(tmp_path) == ["mlp_digits.pb"]


def test_a_failed_verification_under_force_keeps_the_old_output(tmp_path, monkeypatch):
    model = _copy(tmp_path)
    old = tmp_path / "mlp_digits.pb.min"
    old.write_bytes(b"the previous output")
    _corrupt_first_const_content(monkeypatch)
    with pytest.raises(GraphError, match="verification failed"):
        compress_file(model, options=Options(n_clusters=8), force=True)
    assert old.read_bytes() == b"the previous output"
    assert _files(tmp_path) == ["mlp_digits.pb", "mlp_digits.pb.min"]


def test_verification_passes_for_binary_and_text_outputs(tmp_path):
    model = _copy(tmp_path)
    for out in ("out.pb", "out.pbtxt", "out.prototxt", "out.pbtext"):
        result = compress_file(model, tmp_path / out, options=Options(n_clusters=8))
        assert result["verified"] is True
    assert (tmp_path / "out.pbtext").read_bytes().startswith(b"node {")


def test_stale_temp_files_are_swept_but_a_live_writers_is_not(tmp_path):
    import fcntl

    stale = tmp_path / ".x.pb.minigraph-tmp-abc.tmp"
    stale.write_bytes(b"left by a killed writer")
    live = tmp_path / ".y.pb.minigraph-tmp-def.tmp"
    live.write_bytes(b"being written")
    young = tmp_path / ".z.pb.minigraph-tmp-ghi.tmp"
    young.write_bytes(b"just created, not locked yet")
    for path in (stale, live):
        os.utime(path, (time.time() - 60, time.time() - 60))
    with open(live, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        pbfile.write_atomic(tmp_path / "out.pb", b"data")
        assert _files(tmp_path) == [live.name, young.name, "out.pb"]


def test_a_writer_killed_mid_write_leaves_no_temp_file_after_the_next_run(tmp_path, monkeypatch):
    writer = textwrap.dedent(f"""
        import sys, time
        from minigraph import pbfile
        def chunks():
            yield b"x" * 1000
            print("started", flush=True)
            time.sleep(60)
            yield b"never"
        pbfile.write_atomic({str(tmp_path / 'out.pb')!r}, chunks())
    """)
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
    assert process.stdout.readline().strip() == b"started"
    process.send_signal(signal.SIGKILL)
    process.wait()
    (temp,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.pb")]
    os.utime(temp, (time.time() - 60, time.time() - 60))
    pbfile.write_atomic(tmp_path / "other.pb", b"data")
    assert _files(tmp_path) == ["other.pb"]


def test_verification_accepts_a_lifted_payload_on_a_node_that_ends_up_no_const(tmp_path):
    # protobuf keeps the last `op`: a node read as a Const while its 70,000-byte payload was
    # lifted out, then renamed Identity by a later field, still carries the payload (found by
    # fuzzing: verification compared the reader's placeholders instead of the bytes).
    import numpy as np

    from minigraph import from_array
    from minigraph.schema import GraphDef, NodeDef

    node = NodeDef(name="c0", op="Const")
    node.attr["value"].tensor.CopyFrom(from_array(np.arange(17500, dtype=np.float32)))
    node.attr["dtype"].type = 1
    graph = GraphDef()
    graph.node.add().CopyFrom(node)
    weights = graph.node.add(name="w", op="Const")
    weights.attr["value"].tensor.CopyFrom(from_array(np.linspace(-1, 1, 300, dtype=np.float32)))
    weights.attr["dtype"].type = 1
    data = bytearray(graph.SerializeToString())
    op_field = b"\x12\x08Identity"  # NodeDef.op (field 2), appended inside node c0
    first = data.index(b"\x0a", 0)  # GraphDef.node (field 1) of c0: tag, then its length varint
    length, start = 0, first + 1
    for shift in range(0, 35, 7):
        byte = data[start]
        length |= (byte & 0x7F) << shift
        start += 1
        if byte < 0x80:
            break
    body = bytes(data[start:start + length]) + op_field
    size = len(body)
    varint = bytearray()
    while size > 0x7F:
        varint.append(size & 0x7F | 0x80)
        size >>= 7
    varint.append(size)
    patched = bytes(data[:first + 1]) + bytes(varint) + body + bytes(data[start + length:])
    model = tmp_path / "renamed.pb"
    model.write_bytes(patched)
    assert GraphDef.FromString(patched).node[0].op == "Identity"
    result = compress_file(model, options=Options(n_clusters=4))
    assert result["verified"] and result["totals"]["clustered"] == 1
