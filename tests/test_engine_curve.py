"""error_curve: the optimal MSE at every k from one dynamic program."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigraph.engine import cluster, error_curve
from minigraph.errors import ClusteringError
from reference import dp_curve, dp_sse

small_values = hnp.arrays(
    np.float64, st.integers(1, 30),
    elements=st.one_of(st.integers(-6, 6).map(float),
                       st.floats(-100, 100, allow_nan=False, allow_subnormal=False)))


def test_hand_checked_curve():
    # {0, 0, 1, 10}: k=1 mean 2.75, SSE 2*2.75**2 + 1.75**2 + 7.25**2 = 70.75;
    # k=2 {0,0,1}{10}: SSE 2*(1/3)**2 + (2/3)**2 = 2/3; k=3 exact except nothing: 0.
    curve = error_curve(np.array([0.0, 10.0, 0.0, 1.0]), 4)
    np.testing.assert_allclose(curve, [70.75 / 4, (2 / 3) / 4, 0.0, 0.0], atol=1e-15)


def test_non_finite_values_are_left_out():
    curve = error_curve(np.array([np.nan, 1.0, 3.0, np.inf, -np.inf]), 2)
    np.testing.assert_allclose(curve, [1.0, 0.0])  # mean 2, SSE 2 over 2 finite values


def test_nothing_finite_gives_zeros():
    assert error_curve(np.array([np.nan, np.inf]), 3).tolist() == [0.0, 0.0, 0.0]


@given(small_values, st.integers(1, 8))
def test_equals_the_reference_dp_at_every_k(values, k_max):
    curve = error_curve(values, k_max)
    want = np.array(dp_curve(values, k_max)) / values.size
    np.testing.assert_allclose(curve, want, rtol=1e-9, atol=1e-9 * float(np.mean(values ** 2)))
    # at most j clusters (dp_sse) is never better than exactly j: the curve does not rise
    assert dp_sse(values, k_max) / values.size == pytest.approx(want[-1], rel=1e-9, abs=1e-12)


def test_many_divide_and_conquer_layers_match_the_exact_method():
    # 3000 distinct values: layers below j ~ 12 use divide and conquer, later ones Knuth's
    # windows; both must give the exact optimum.
    values = np.random.default_rng(8).normal(0, 1, 3000)
    curve = error_curve(values, 256)
    for k in (2, 5, 11, 12, 13, 17, 64, 256):
        assert curve[k - 1] == pytest.approx(cluster(values, k, method="optimal").mse, rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("n", [50, 1000])  # <= 16 * 64 distinct: exact points
def test_equals_cluster_optimal_and_is_non_increasing(dtype, n):
    rng = np.random.default_rng(n)
    values = rng.laplace(0, 0.05, n).astype(dtype)
    curve = error_curve(values, 64)
    want = np.array([cluster(values, k, method="optimal").mse for k in range(1, 65)])
    np.testing.assert_allclose(curve, want, rtol=1e-9, atol=1e-12 * want[0])
    assert np.all(np.diff(curve) <= 0)


def test_binned_curve_bounds_and_tracks_the_auto_clustering():
    # 1e5 distinct float32 values: the curve runs over bins, an upper bound of the optimum,
    # and (by measurement) close to what cluster("auto") reaches.
    rng = np.random.default_rng(1)
    values = rng.laplace(0, 0.01, 100_000).astype(np.float32)
    curve = error_curve(values, 256)
    assert np.all(np.diff(curve) <= 0)
    for k in (2, 16, 256):
        optimum = cluster(values, k, method="optimal").mse
        assert optimum * (1 - 1e-9) <= curve[k - 1] <= optimum * 1.005


def test_bad_arguments_are_refused():
    with pytest.raises(ClusteringError, match="k_max"):
        error_curve(np.ones(3), 0)
    with pytest.raises(ClusteringError, match="float16, float32 or float64"):
        error_curve(np.ones(3, np.int32), 4)
