"""Tests of minigraph.engine: invariants of every method and route, special values, errors."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigraph.cli import main
from minigraph.compress import Options
from minigraph.engine import (INITS, METHODS, Clustering, _binned, _codebook, _lloyd, _route,
                              _sorted, _twins, check_options, cluster, substitute)
from minigraph.errors import ClusteringError, MinigraphError
from reference import brute_force_sse, dp_sse, sse_of

REPO = Path(__file__).resolve().parents[1]

finite = st.one_of(
    st.integers(-30, 30).map(float),  # repeats, ties and exact midpoints
    st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False),
)
special = st.sampled_from([math.nan, math.inf, -math.inf])


def as_float32(value: float) -> float:
    """The float32 nearest ``value``, as a Python float: numpy 1.x's hypothesis integration
    refuses elements that a float32 array cannot hold exactly."""
    return float(np.float32(value))


def float_arrays(shape, elements):
    """float32 or float64 arrays; a float32 array's elements rounded to float32 first."""
    return st.sampled_from([np.float32, np.float64]).flatmap(lambda dtype: hnp.arrays(
        dtype, shape, elements=elements.map(as_float32) if dtype == np.float32 else elements))


values_strategy = float_arrays(st.integers(0, 60), st.one_of(finite, finite, finite, special))
configs = st.tuples(
    st.integers(1, 10),
    st.sampled_from(METHODS),
    st.sampled_from(INITS),
    st.integers(0, 3),
    st.sampled_from([3, 64]),  # prefix-sum block: 3 makes small arrays span blocks
)


def run(values, config) -> Clustering:
    k, method, init, seed, block = config
    with mock.patch.object(_sorted, "_BLOCK", block):
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
    if result.method == "lloyd" and result.iterations < _lloyd._MAX_ITER:
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


@given(values_strategy, st.integers(1, 70), st.sampled_from(METHODS))
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
    with mock.patch.object(_binned, "histogram", wraps=_binned.histogram) as spy:
        histogram = run(sixteen, config)
    assert spy.called
    with mock.patch.object(_binned, "histogram", side_effect=AssertionError("histogram used")):
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


def test_importing_minigraph_does_not_import_numba():
    # numba's import costs about 0.3 s: commands that never cluster must not pay it.
    code = "import minigraph, minigraph.engine, sys; assert 'numba' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert done.returncode == 0, done.stderr


# ---- the binned float32 path (large float32 arrays: one histogram pass instead of a sort) ----

float32_values = hnp.arrays(np.float32, st.integers(0, 80),
                            elements=st.one_of(finite, finite, finite, special,
                                               st.just(-0.0)).map(as_float32))


def binned(values, k, method="auto", init="auto"):
    """cluster() with the binned path forced on however small the array."""
    with mock.patch.object(_route, "BINNED_MIN", 1):
        return cluster(values, k, method=method, init=init)


# Near-equal values (a * (1 + e * 2**-16)) share a bin, so bins really merge distinct values.
# With more distinct values than auto's bins (64 k) the binned path keeps merged bins.
@given(float32_values, st.integers(1, 10), st.sampled_from(["auto", "lloyd"]),
       st.sampled_from(INITS))
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
    used, real = [], _binned.from_bins

    def record(*args):
        data = real(*args)
        used.append(data is not None)
        return data

    with mock.patch.object(_binned, "from_bins", record):
        fast = cluster(values, 64)
    assert used == [True]
    best = cluster(values, 64, method="optimal")
    assert fast.mse <= best.mse * 1.001
    assert fast.n_distinct == best.n_distinct == np.unique(values).size


@given(hnp.arrays(np.float32, st.integers(1, 200),
                  elements=st.one_of(finite, special).map(as_float32)),
       hnp.arrays(np.float64, st.integers(1, 9), elements=finite, unique=True))
def test_labels_by_bin_table_equal_labels_by_search(values, thresholds):
    padded = _codebook.padded_thresholds(np.sort(thresholds))
    table = _binned.labels_by_table(values, padded, np.zeros(values.size, np.uint8))
    search = _codebook.labels_by_search(values, padded, np.zeros(values.size, np.uint8))
    expected = np.searchsorted(np.sort(thresholds), values.astype(np.float64), side="left")
    expected[~np.isfinite(values)] = 0
    assert np.array_equal(table, expected) and np.array_equal(search, expected)


# ---- codebook application ----

def test_substitute_replaces_finite_values_and_measures_the_error():
    values = np.array([1.0, 2.0, math.nan, 4.0, math.inf, -math.inf], np.float32)
    labels = np.array([0, 0, 1, 1, 0, 1], np.uint8)
    new, errors = substitute(values, labels, np.array([1.5, 4.25]))
    assert new.dtype == np.float32
    assert np.array_equal(new, [1.5, 1.5, math.nan, 4.25, math.inf, -math.inf], equal_nan=True)
    # By hand: errors 0.5, -0.5, 0.25 over 3 finite values; signal 1 + 4 + 16.
    assert errors.mse == 0.5625 / 3 and errors.max_abs_error == 0.5 and errors.distinct == 2
    assert math.isclose(errors.sqnr_db, 10 * math.log10(21 / 0.5625), rel_tol=1e-12)


def test_substitute_rounds_the_codebook_to_the_values_dtype():
    # float16 has no value between 1 and 1 + 2**-10: both entries become 1.0, one value in use;
    # 70000 exceeds float16's range but labels nothing, so it must not matter.
    values = np.array([1.0, 1.0009765625, 3.0], np.float16)
    new, errors = substitute(values, np.array([0, 1, 0], np.uint8),
                             np.array([1.0001, 1.0002, 70000.0]))
    assert new.dtype == np.float16 and new.tolist() == [1.0, 1.0, 1.0]
    assert errors.distinct == 1 and errors.max_abs_error == 2.0
    assert errors.mse == (0.0009765625 ** 2 + 4.0) / 3


def test_substitute_without_error_has_no_sqnr():
    values = np.array([2.0, 5.0, 2.0])
    new, errors = substitute(values, np.array([0, 1, 0], np.uint16), np.array([2.0, 5.0]))
    assert new.tolist() == [2.0, 5.0, 2.0] and errors == (0.0, 0.0, None, 2)


@given(values_strategy, configs)
def test_small_inputs_give_the_same_bits_with_or_without_the_numpy_twins(values, config):
    with mock.patch.object(_twins, "SMALL", -1):  # every input takes the compiled kernels
        compiled = run(values, config)
        book = compiled.centroids
        new_compiled, errors_compiled = substitute(values, compiled.labels, book)
    twins = run(values, config)
    new_twins, errors_twins = substitute(values, twins.labels, twins.centroids)
    assert np.array_equal(compiled.centroids.view(np.uint64), twins.centroids.view(np.uint64))
    assert np.array_equal(compiled.labels, twins.labels)
    assert np.float64(compiled.mse).view(np.uint64) == np.float64(twins.mse).view(np.uint64)
    assert np.array_equal(new_compiled.view(np.uint8), new_twins.view(np.uint8))
    if not numba.config.DISABLE_JIT or values.dtype == np.float64:  # see test_engine_kernels
        assert str(errors_compiled) == str(errors_twins)


# ---- the one option validator: same wording from cluster(), Options and the command line ----

BAD_OPTIONS = [
    ("n_clusters", 0, "n_clusters must be an integer >= 1, got 0"),
    ("n_clusters", True, "n_clusters must be an integer >= 1, got True"),
    ("method", "kmeans", "method must be one of auto, lloyd, optimal; got 'kmeans'"),
    ("init", None, "init must be one of auto, linear, density, kmeans++, random; got None"),
    ("seed", -1, "seed must be an integer >= 0, got -1"),
    ("seed", 1.5, "seed must be an integer >= 0, got 1.5"),
    ("workers", 0, "workers must be an integer >= 1, got 0"),
    ("workers", 2.0, "workers must be an integer >= 1, got 2.0"),
    ("min_n_weights", -1, "min_n_weights must be an integer >= 0, got -1"),
]


@pytest.mark.parametrize("name,value,message", BAD_OPTIONS)
def test_one_wording_for_each_bad_option(name, value, message):
    with pytest.raises(ClusteringError) as from_validator:
        check_options(**{name: value})
    with pytest.raises(ClusteringError) as from_options:
        Options(**{name: value}).validate()
    assert str(from_validator.value) == str(from_options.value) == message
    if name not in ("workers", "min_n_weights"):
        args = {"n_clusters": value} if name == "n_clusters" else {name: value}
        with pytest.raises(ClusteringError) as from_cluster:
            cluster(np.arange(10.0), **args)
        assert str(from_cluster.value) == message


@pytest.mark.parametrize("argv,message", [
    (["--seed", "-1"], "seed must be an integer >= 0, got -1"),
    (["--workers", "0"], "workers must be an integer >= 1, got 0"),
    (["-k", "0"], "n_clusters must be an integer >= 1, got 0"),
    (["--min-n-weights", "-5"], "min_n_weights must be an integer >= 0, got -5"),
])
def test_bad_options_are_usage_errors_before_any_file_is_read(argv, message, tmp_path, capsys):
    missing = tmp_path / "x.pb"  # does not exist: reading it would be exit 1, not 2
    assert main([*argv, str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"minigraph: error: {message}"


@pytest.mark.filterwarnings("error")
def test_signalling_nans_are_labelled_without_a_floating_point_warning():
    # 0x7F800001 is a signalling NaN (quiet bit clear): widening it to float64 raises "invalid".
    values = np.array([0x3F800000, 0x7F800001, 0x40000000, 0x40400000], np.uint32).view(np.float32)
    result = cluster(values, 2)
    assert result.centroids.size == 2


@pytest.mark.filterwarnings("error")
def test_sqnr_of_a_subnormal_signal_is_finite_and_warning_free():
    # By hand: signal = 2 × (1e-160)² = 2e-320 (subnormal), sse = 2 × (1e150)² = 2e300; their
    # ratio underflows to 0, yet the SQNR is 10 × log10(1e-620) = -6200 dB.
    values = np.array([1e-160, 1e-160])
    _, errors = substitute(values, np.zeros(2, np.uint8), np.array([1e150]))
    assert errors.sqnr_db == pytest.approx(-6200, rel=1e-6)
