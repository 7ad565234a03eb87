"""Tests of minigraph.quantize: invariants of every method, special values, errors, imports."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigraph import quantize
from minigraph.errors import ClusteringError, MinigraphError
from minigraph.quantize import Clustering, cluster
from reference import brute_force_sse, dp_sse, sse_of

REPO = Path(__file__).resolve().parents[1]

finite = st.one_of(
    st.integers(-30, 30).map(float),  # repeats, ties and exact midpoints
    st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False),
)
special = st.sampled_from([math.nan, math.inf, -math.inf])
values_strategy = hnp.arrays(
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 60),
    elements=st.one_of(finite, finite, finite, special),
)
configs = st.tuples(
    st.integers(1, 10),
    st.sampled_from(quantize.METHODS),
    st.sampled_from(quantize.INITS),
    st.integers(0, 3),
    st.sampled_from([3, 64]),  # prefix-sum block: 3 makes small arrays span blocks
)


def run(values, config) -> Clustering:
    k, method, init, seed, block = config
    with mock.patch.object(quantize, "_BLOCK", block):
        return cluster(values, k, method=method, init=init, seed=seed)


def finite_part(values, labels):
    keep = np.isfinite(values)
    return values[keep].astype(np.float64), labels[keep].astype(np.int64)


@given(values_strategy, configs)
def test_invariants_of_every_method(values, config):
    result = run(values, config)
    x, labels = finite_part(values, result.labels)
    c = result.centroids
    distinct = np.unique(x)
    assert result.labels.shape == values.shape and result.labels.dtype == np.uint8
    assert c.dtype == np.float64 and c.size <= min(config[0], distinct.size)
    assert np.all(np.diff(c) > 0)  # strictly ascending
    assert result.n_distinct == distinct.size
    assert np.all(labels < c.size) and np.all(result.labels[~np.isfinite(values)] == 0)
    assert set(labels.tolist()) == set(range(c.size))  # no empty cluster
    scale = 1e-9 * (1 + (np.abs(x).max() if x.size else 0))
    for j in range(c.size):  # each centroid is the mean of its members
        members = x[labels == j]
        assert abs(c[j] - math.fsum(members) / members.size) <= scale
    for j in range(c.size - 1):  # clusters are contiguous runs of the sorted values
        assert x[labels == j].max() < x[labels == j + 1].min()
    sse = sse_of(values, result.labels, c)
    assert math.isclose(result.mse * x.size, sse, rel_tol=1e-9, abs_tol=1e-12)
    if result.method == "lloyd" and result.iterations < quantize._MAX_ITER:
        nearest = np.abs(x[:, None] - c[None, :]).min(axis=1)  # a fixed point of Lloyd
        assert np.all(np.abs(x - c[labels]) <= nearest + scale)


@settings(max_examples=60)
@given(values_strategy, configs)
def test_mse_is_at_least_the_optimum_and_equal_for_optimal(values, config):
    result = run(values, config)
    best = dp_sse(values, config[0])
    sse = sse_of(values, result.labels, result.centroids)
    assert sse >= best * (1 - 1e-9) - 1e-9
    if config[1] == "optimal" or result.method in ("exact", "optimal"):
        assert sse <= best * (1 + 1e-9) + 1e-9


@given(hnp.arrays(np.float64, st.integers(1, 12), elements=finite), st.integers(1, 5))
def test_optimal_matches_brute_force_over_contiguous_partitions(values, k):
    result = cluster(values, k, method="optimal")
    best = brute_force_sse(values, k)
    assert math.isclose(result.mse * values.size, best, rel_tol=1e-9, abs_tol=1e-9)


@given(values_strategy, st.integers(1, 70), st.sampled_from(quantize.METHODS))
def test_at_most_k_distinct_values_are_kept_exactly(values, extra, method):
    x = values[np.isfinite(values)]
    k = np.unique(x).size + extra - 1
    if k < 1:
        return
    result = cluster(values, k, method=method)
    assert result.method == "exact" and result.iterations == 0 and result.mse == 0.0
    rebuilt = result.reconstruct(values)
    assert rebuilt.dtype == values.dtype
    assert np.array_equal(rebuilt, values, equal_nan=True)
    assert np.array_equal(result.centroids, np.unique(x.astype(np.float64)))


@given(values_strategy, configs, st.randoms(use_true_random=False))
def test_permuting_the_input_permutes_the_labels_only(values, config, random):
    order = list(range(values.size))
    random.shuffle(order)
    first, second = run(values, config), run(values[order], config)
    assert np.array_equal(first.centroids, second.centroids)
    assert np.array_equal(first.labels[order], second.labels)
    assert (first.mse, first.iterations) == (second.mse, second.iterations)
    assert first.method == second.method


@given(values_strategy, st.integers(1, 10), st.sampled_from(["random", "kmeans++"]),
       st.integers(0, 2**32))
def test_same_seed_same_result(values, k, init, seed):
    first = cluster(values, k, method="lloyd", init=init, seed=seed)
    second = cluster(values, k, method="lloyd", init=init, seed=seed)
    assert np.array_equal(first.centroids, second.centroids)
    assert np.array_equal(first.labels, second.labels) and first.mse == second.mse


@given(values_strategy, configs)
def test_non_finite_values_are_left_out_and_kept(values, config):
    keep = np.isfinite(values)
    whole, alone = run(values, config), run(values[keep], config)
    assert np.array_equal(whole.centroids, alone.centroids)
    assert np.array_equal(whole.labels[keep], alone.labels)
    assert np.all(whole.labels[~keep] == 0) and whole.mse == alone.mse
    rebuilt = whole.reconstruct(values)
    assert np.array_equal(rebuilt[~keep], values[~keep], equal_nan=True)
    assert np.array_equal(rebuilt[keep], whole.centroids.astype(values.dtype)[whole.labels[keep]])


def as_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values truncated to bfloat16 precision (low 16 bits zero)."""
    return (values.astype(np.float32).view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)


@given(values_strategy, configs, st.booleans())
def test_histogram_path_equals_sorted_path(values, config, brain):
    sixteen = as_bfloat16(values) if brain else values.astype(np.float16)
    with mock.patch.object(quantize, "_histogram", wraps=quantize._histogram) as spy:
        histogram = run(sixteen, config)
    assert spy.called
    with mock.patch.object(quantize, "_histogram", side_effect=AssertionError("histogram used")):
        sorted_path = run(sixteen.astype(np.float64), config)
    assert np.allclose(histogram.centroids, sorted_path.centroids, rtol=1e-12, atol=0)
    assert np.array_equal(histogram.labels, sorted_path.labels)
    assert math.isclose(histogram.mse, sorted_path.mse, rel_tol=1e-9, abs_tol=1e-12)
    assert (histogram.method, histogram.n_distinct) == (sorted_path.method, sorted_path.n_distinct)


def test_special_inputs_have_defined_results():
    empty = cluster(np.array([], np.float32), 4)
    assert empty.centroids.size == 0 and empty.labels.shape == (0,) and empty.mse == 0.0
    assert empty.method == "exact" and empty.n_distinct == 0
    nothing = cluster(np.array([[math.nan, math.inf], [-math.inf, math.nan]]), 3)
    assert nothing.centroids.size == 0 and np.all(nothing.labels == 0) and nothing.mse == 0.0
    one = cluster(np.array(2.5), 1)
    assert one.labels.shape == () and one.centroids.tolist() == [2.5]
    same = cluster(np.full((3, 4), -1.25, np.float16), 1, method="lloyd")
    assert same.centroids.tolist() == [-1.25] and same.method == "exact" and same.mse == 0.0
    zeros = cluster(np.array([0.0, -0.0, 1.0, 2.0]), 2, method="optimal")  # SSE 0.5, not 2/3
    assert zeros.n_distinct == 3 and zeros.labels.tolist() == [0, 0, 1, 1]
    assert zeros.centroids.tolist() == [0.0, 1.5] and zeros.mse == 0.125


@pytest.mark.parametrize("k,dtype", [(256, np.uint8), (257, np.uint16), (300, np.uint16)])
def test_labels_use_the_smallest_unsigned_type(k, dtype):
    values = np.arange(1000, dtype=np.float64)
    result = cluster(values, k)
    assert result.centroids.size == k and result.labels.dtype == dtype
    assert result.labels.max() == k - 1


def test_reconstruct_rejects_other_shapes():
    result = cluster(np.arange(6.0), 2)
    with pytest.raises(ClusteringError, match=r"\(6,\)"):
        result.reconstruct(np.arange(5.0))


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "4", None, np.float64(3.0)])
def test_bad_k_is_rejected(k):
    with pytest.raises(ClusteringError, match=repr(k).replace("(", r"\(").replace(")", r"\)")):
        cluster(np.arange(10.0), k)


def test_numpy_integer_k_is_accepted():
    assert cluster(np.arange(10.0), np.int64(3)).centroids.size == 3


@pytest.mark.parametrize(
    "kwargs,text",
    [
        ({"method": "kmeans"}, "'kmeans'"),
        ({"method": None}, "None"),
        ({"init": "k-means++"}, "'k-means\\+\\+'"),
        ({"seed": -1}, "-1"),
        ({"seed": 1.5}, "1.5"),
    ],
)
def test_bad_options_are_rejected(kwargs, text):
    with pytest.raises(ClusteringError, match=text):
        cluster(np.arange(10.0), 3, **kwargs)


@pytest.mark.parametrize("values", [np.arange(5), np.ones(3, np.complex64), np.array(["a"])])
def test_non_float_values_are_rejected(values):
    with pytest.raises(ClusteringError, match=str(values.dtype)):
        cluster(values, 2)


def test_overflowing_values_are_rejected():
    with pytest.raises(ClusteringError, match="1e\\+200"):
        cluster(np.array([1.0, 1e200, 3.0]), 2)


def test_clustering_error_is_a_minigraph_value_error():
    assert issubclass(ClusteringError, MinigraphError) and issubclass(ClusteringError, ValueError)


def _python(code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_importing_quantize_does_not_import_numba():
    code = "import sys, minigraph.quantize; print('numba' in sys.modules)"
    done = _python(code, REPO, {**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_clusters_where_no_numba_cache_directory_is_writable(tmp_path):
    # A read-only install with no usable home: numba would raise "cannot cache function"
    # when the kernels are decorated. Root ignores permission bits, so the cache paths are
    # also made impossible: __pycache__ is a file and HOME lies under a file.
    package = tmp_path / "site" / "minigraph"
    shutil.copytree(REPO / "minigraph", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "__pycache__").write_text("")
    (tmp_path / "file").write_text("")
    for path in [package, *package.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    env = {key: value for key, value in os.environ.items()
           if key not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=str(tmp_path / "file" / "home"), PYTHONPATH=str(tmp_path / "site"))
    code = (
        "import numpy as np, minigraph.quantize as q\n"
        "r = q.cluster(np.arange(100.0), 4, method='optimal')\n"
        "print(q.__file__, r.centroids.tolist())\n"
    )
    try:
        done = _python(code, tmp_path, env)
    finally:
        for path in [package, *package.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0].startswith(str(package))
    assert done.stdout.split(" ", 1)[1].strip() == "[12.0, 37.0, 62.0, 87.0]"  # 4 runs of 25


# ---- the binned float32 path (large float32 arrays: one histogram pass instead of a sort) ----

float32_values = hnp.arrays(np.float32, st.integers(0, 80),
                            elements=st.one_of(finite, finite, finite, special,
                                               st.just(-0.0)).map(float))


def binned(values, k, method="auto", init="auto"):
    """cluster() with the binned path forced on however small the array."""
    with mock.patch.object(quantize, "_BINNED_MIN", 1):
        return cluster(values, k, method=method, init=init)


# Near-equal values (a * (1 + e * 2**-16)) share a bin, so bins really merge distinct values.
# With more distinct values than auto's bins (64 k) the binned path keeps merged bins.
@given(float32_values, st.integers(1, 10), st.sampled_from(["auto", "lloyd"]),
       st.sampled_from(quantize.INITS))
def test_binned_path_invariants(values, k, method, init):
    check_binned(values, k, method, init)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [2, 3, 5])
def test_binned_path_invariants_where_every_bin_merges_values(seed, k):
    # a * (1 + e * 2**-22), e < 1000, stays inside one bin (2**-11 wide): each bin holds many
    # distinct values, so thresholds and errors must come from the members, not the bin means.
    rng = np.random.default_rng(seed)
    values = (rng.integers(-30, 31, 2000) * (1 + rng.integers(0, 1000, 2000) * 2.0**-22))
    check_binned(values.astype(np.float32), k, "auto", "auto")


def check_binned(values, k, method, init):
    result = binned(values, k, method, init)
    x, labels = finite_part(values, result.labels)
    c = result.centroids
    assert result.n_distinct == np.unique(x).size  # exact, -0.0 and 0.0 as one
    assert c.size <= min(k, result.n_distinct) and np.all(np.diff(c) > 0)
    assert np.all(labels < c.size) and np.all(result.labels[~np.isfinite(values)] == 0)
    assert set(labels.tolist()) == set(range(c.size))
    scale = 1e-9 * (1 + (np.abs(x).max() if x.size else 0))
    for j in range(c.size):
        members = x[labels == j]
        assert abs(c[j] - math.fsum(members) / members.size) <= scale
    for j in range(c.size - 1):
        assert x[labels == j].max() < x[labels == j + 1].min()
    sse = sse_of(values, result.labels, c)
    assert math.isclose(result.mse * x.size, sse, rel_tol=1e-9, abs_tol=1e-12)
    if values.size <= 100:  # the reference DP is slow
        assert sse >= dp_sse(values, k) * (1 - 1e-9) - 1e-9
    if result.n_distinct <= k:
        assert result.method == "exact" and result.mse == 0.0


def test_binned_path_runs_for_large_float32_and_stays_near_the_optimum():
    rng = np.random.default_rng(7)
    n = 300_000
    values = np.where(rng.random(n) < 0.9, rng.laplace(0, 0.01, n),
                      rng.normal(0, 0.1, n)).astype(np.float32)
    used, real = [], quantize._from_bins

    def record(*args):
        data = real(*args)
        used.append(data is not None)
        return data

    with mock.patch.object(quantize, "_from_bins", record):
        fast = cluster(values, 64)
    assert used == [True]
    best = cluster(values, 64, method="optimal")
    assert fast.mse <= best.mse * 1.001
    assert fast.n_distinct == best.n_distinct == np.unique(values).size


@given(hnp.arrays(np.float32, st.integers(1, 200), elements=st.one_of(finite, special)),
       hnp.arrays(np.float64, st.integers(1, 9), elements=finite, unique=True))
def test_labels_by_bin_table_equal_labels_by_search(values, thresholds):
    from minigraph import kernels

    thresholds = np.sort(thresholds)
    k = thresholds.size + 1
    with mock.patch.object(quantize, "_BINNED_MIN", 1):
        table = quantize._label(values, thresholds, k, kernels)
    with mock.patch.object(quantize, "_BINNED_MIN", 1 << 62):
        search = quantize._label(values, thresholds, k, kernels)
    assert np.array_equal(table, search)


@pytest.mark.filterwarnings("error")
def test_signalling_nans_are_labelled_without_a_floating_point_warning():
    # 0x7F800001 is a signalling NaN (quiet bit clear): widening it to float64 raises "invalid".
    values = np.array([0x3F800000, 0x7F800001, 0x40000000, 0x40400000], np.uint32).view(np.float32)
    result = cluster(values, 2)
    assert result.centroids.size == 2


@pytest.mark.filterwarnings("error")
def test_sqnr_of_a_subnormal_signal_is_finite_and_warning_free():
    from minigraph.quantize import substitute

    # By hand: signal = 2 × (1e-160)² = 2e-320 (subnormal), sse = 2 × (1e150)² = 2e300; their
    # ratio underflows to 0, yet the SQNR is 10 × log10(1e-620) = -6200 dB.
    values = np.array([1e-160, 1e-160])
    _, errors = substitute(values, np.zeros(2, np.uint8), np.array([1e150]))
    assert errors.sqnr_db == pytest.approx(-6200, rel=1e-6)
