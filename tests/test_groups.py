"""Per-channel-group codebooks in the values form (``group_size``): groups, errors, options, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigraph import ClusteringError, cluster, compress, from_array, read_graph, to_array
from minigraph.cli import main
from minigraph.compress import Options
from minigraph.schema import GraphDef

from conftest import FIXTURES


def _graph(values: np.ndarray, dtype: str = "DT_FLOAT") -> GraphDef:
    graph_def = GraphDef()
    node = graph_def.node.add(name="w", op="Const")
    tensor = from_array(values, dtype)
    node.attr["dtype"].type = tensor.dtype
    node.attr["value"].tensor.CopyFrom(tensor)
    graph_def.node.add(name="use", op="Identity", input=["w"]).attr["T"].type = tensor.dtype
    return graph_def


def _run(values: np.ndarray, k: int, group_size: int | None, dtype: str = "DT_FLOAT", **options):
    out, report = compress(_graph(values, dtype), n_clusters=k, min_n_weights=0,
                           group_size=group_size, **options)
    (row,) = report.tensors
    return to_array(out.node[0].attr["value"].tensor), row


def test_groups_of_the_last_axis_get_their_own_codebooks():
    # Channels 0-3 cycle through {0, 1, 10}, channels 4-7 through {100, 101, 200}, 8 of each.
    # Best 2 values by hand: {0, 1} -> 0.5 and {10} (SSE 4 against 324 for {0} and {1, 10});
    # likewise 100.5 and 200. One codebook for the tensor could not keep all four.
    values = np.empty((6, 8), np.float32)
    values[:, :4] = np.resize([0, 1, 10], 24).reshape(6, 4)
    values[:, 4:] = np.resize([100, 101, 200], 24).reshape(6, 4)
    expected = np.where(values < 2, 0.5, np.where((values > 50) & (values < 150), 100.5, values))
    new, row = _run(values, 2, 4)
    assert np.array_equal(new, expected.astype(np.float32))
    assert (row.groups, row.group_size, row.distinct_before, row.distinct_after) == (2, 4, 6, 4)
    # mse by hand: the 32 values 0, 1, 100 and 101 of the 48 move by 0.5
    assert row.mse == pytest.approx(32 * 0.25 / 48) and row.max_abs_error == 0.5
    # signal 8 * (0 + 1 + 100 + 100**2 + 101**2 + 200**2) over an error of 32 * 0.25
    assert row.sqnr_db == pytest.approx(10 * np.log10(8 * 60302 / 8))
    per_tensor, _ = _run(values, 2, None)
    assert np.unique(per_tensor).size == 2


def test_last_group_may_be_smaller_and_a_large_g_means_one_group():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(40, 10)).astype(np.float32)
    new, row = _run(values, 3, 4)
    assert row.groups == 3  # channels 0-3, 4-7, 8-9
    for start in (0, 4, 8):
        assert np.unique(new[:, start:start + 4]).size == 3
    whole, row = _run(values, 3, 10)
    assert row.groups == 1
    assert np.array_equal(whole, _run(values, 3, None)[0])  # one group: the tensor's codebook


@pytest.mark.parametrize("shape", [(300,), (300, 1)])
def test_rank_one_with_many_channels_is_grouped_but_one_channel_is_per_tensor(shape):
    values = np.linspace(-1, 1, 300, dtype=np.float32).reshape(shape)
    new, row = _run(values, 4, 100)
    if shape[-1] == 1:
        assert row.groups is None and np.unique(new).size == 4
    else:
        assert row.groups == 3 and np.unique(new).size == 12


@given(st.integers(1, 12), st.integers(2, 12), st.integers(1, 13), st.integers(1, 4),
       st.lists(st.sampled_from([-2.5, -1.0, 0.0, 0.25, 0.5, 3.0, 7.0, np.nan, np.inf]),
                min_size=1, max_size=7), st.sampled_from(["DT_FLOAT", "DT_HALF", "DT_DOUBLE"]))
def test_every_group_holds_at_most_k_values_with_nonfinite_kept(rows, channels, group, k,
                                                                 pool, dtype):
    size = rows * channels
    values = (np.resize(pool, size) * (1 + np.arange(size) % 3)).reshape(rows, channels)
    values = to_array(from_array(values, dtype))  # as the tensor holds them
    new, row = _run(values, k, group, dtype, method="optimal")
    assert np.array_equal(np.isfinite(new), np.isfinite(values))
    assert np.array_equal(new[~np.isfinite(values)], values[~np.isfinite(values)],
                          equal_nan=True)
    for start in range(0, channels, group):
        part, before = new[:, start:start + group], values[:, start:start + group]
        finite = np.isfinite(before)
        assert np.unique(part[finite]).size <= k
        if np.unique(before[finite]).size <= k:  # nothing to merge: the group is unchanged
            assert np.array_equal(part[finite], before[finite])
        else:  # the group's own optimum is never worse than the tensor's codebook on it
            whole = cluster(values[np.isfinite(values)], k, method="optimal")
            book = whole.centroids[whole.labels]
            mask = np.zeros(values.shape, bool)
            mask[:, start:start + group] = True
            shared = book[mask[np.isfinite(values)]]
            own = np.sum((part[finite].astype(np.float64) - before[finite]) ** 2)
            assert own <= np.sum((shared - before[finite]) ** 2) * (1 + 1e-3) + 1e-6
    if row.clustered:
        assert row.groups == -(-channels // group)


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "4"])
def test_group_size_must_be_a_positive_integer(bad):
    with pytest.raises(ClusteringError, match="group_size"):
        Options(group_size=bad).validate()


def test_group_size_with_a_global_codebook_is_refused():
    with pytest.raises(ClusteringError, match="global_clusters"):
        compress(read_graph(FIXTURES / "mlp_digits.pb"), global_clusters=True, group_size=8)


def test_report_rows_and_options_carry_the_groups():
    # The MLP's kernels are [64, 128], [128, 64] and [64, 10] (tests/fixtures/README.md).
    _, report = compress(read_graph(FIXTURES / "mlp_digits.pb"), n_clusters=4, group_size=16)
    groups = {row.shape: (row.groups, row.group_size) for row in report.clustered}
    assert groups == {(64, 128): (8, 16), (128, 64): (4, 16), (64, 10): (1, 16)}
    assert report.to_dict()["options"]["group_size"] == 16
    assert "one codebook per 16 output channels" in report.to_text()


@pytest.mark.parametrize("args", [["--group-size", "0"], ["--group-size", "two"],
                                  ["--group-size", "8", "--global_clusters"]])
def test_cli_bad_group_size_is_a_usage_error(args, tmp_path, capsys):
    (tmp_path / "m.pb").write_bytes((FIXTURES / "mlp_digits.pb").read_bytes())
    assert main(args + [str(tmp_path / "m.pb")]) == 2
    assert not (tmp_path / "m.pb.min").exists()
    assert "group" in capsys.readouterr().err


def test_cli_group_size_reaches_the_json_report(tmp_path, capsys):
    (tmp_path / "m.pb").write_bytes((FIXTURES / "cnn_digits.pb").read_bytes())
    assert main(["--group-size", "8", "-k", "4", "--json", str(tmp_path / "m.pb")]) == 0
    (result,) = json.loads(capsys.readouterr().out)["files"]
    conv2 = next(t for t in result["tensors"] if t["name"].startswith("conv2/Conv2D"))
    assert (conv2["group_size"], conv2["groups"], conv2["distinct_after"]) == (8, 4, 16)


def test_compressing_a_grouped_output_again_changes_nothing():
    once, _ = compress(read_graph(FIXTURES / "cnn_digits.pb"), n_clusters=4, group_size=8)
    twice, report = compress(once, n_clusters=4, group_size=8)
    assert twice.SerializeToString(deterministic=True) == once.SerializeToString(deterministic=True)
    conv2 = next(row for row in report.tensors if row.name.startswith("conv2/Conv2D"))
    assert conv2.skipped == "≤ 4 distinct values per group"
