"""Tests of the engine's numba kernels against plain NumPy and tests/reference.py."""

from __future__ import annotations

import hashlib
import importlib
import math
import re
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigraph.engine import (_codebook_kernels, _lloyd_kernels, _optimal_kernels, _sorted_kernels,
                              _twins)
from reference import dp_sse, group_sse

# Few distinct magnitudes and many repeats, so ties and duplicates are common.
values_strategy = hnp.arrays(
    np.float64,
    st.integers(1, 40),
    elements=st.one_of(
        st.integers(-20, 20).map(float),
        st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
    ),
)


def unit_layout(values: np.ndarray, block: int):
    """Sorted values with block prefix sums built by NumPy (block >= 2: unit weights)."""
    x = np.sort(values)
    shift = float(x[x.size // 2])
    d = x - shift
    p1 = np.concatenate(([0.0], np.cumsum(d)))[::block][: x.size // block + 1].copy()
    p2 = np.concatenate(([0.0], np.cumsum(d * d)))[::block][: x.size // block + 1].copy()
    return x, p1, p2, np.empty(0), block, shift


def weighted_layout(values: np.ndarray):
    """Distinct values with full prefix sums of weights (block 1)."""
    x, counts = np.unique(values, return_counts=True)
    w = counts.astype(np.float64)
    shift = float(x[x.size // 2])
    d = x - shift
    pw, p1, p2 = (np.concatenate(([0.0], np.cumsum(a))) for a in (w, w * d, w * d * d))
    return x, p1, p2, pw, 1, shift


def partition_sse(points, counts, bounds) -> float:
    """Exact SSE of a partition of weighted points."""
    return math.fsum(group_sse(points[a:b], counts[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=False))


@given(values_strategy, st.integers(2, 7), st.data())
def test_block_prefix_and_partition_sums_match_numpy(values, block, data):
    x, _, _, _, _, shift = unit_layout(values, block)
    p1 = np.empty(x.size // block + 1)
    p2 = np.empty(x.size // block + 1)
    assert _sorted_kernels.block_prefix(x, block, shift, p1, p2) == np.unique(x).size
    cuts = sorted(data.draw(st.lists(st.integers(0, x.size), max_size=6)))
    bounds = np.array([0, *cuts, x.size], np.int64)
    c = bounds.size - 1
    w, s1, s2 = np.empty(c), np.empty(c), np.empty(c)
    _sorted_kernels.partition_sums(x, p1, p2, np.empty(0), block, shift, bounds, w, s1, s2)
    for j in range(c):
        part = x[bounds[j] : bounds[j + 1]] - shift
        assert w[j] == part.size
        scale = 1e-9 * (1 + np.abs(x - shift).max()) ** 2 * x.size
        assert abs(s1[j] - math.fsum(part)) <= scale
        assert abs(s2[j] - math.fsum(part * part)) <= scale


@given(values_strategy)
def test_run_lengths_match_unique(values):
    x = np.sort(values)
    expected_values, expected_counts = np.unique(x, return_counts=True)
    v, w = np.empty(expected_values.size), np.empty(expected_values.size)
    _sorted_kernels.run_lengths(x, v, w)
    assert np.array_equal(v, expected_values) and np.array_equal(w, expected_counts)


def _check_partition(bounds, m, k):
    assert bounds[0] == 0 and bounds[k] == m
    assert np.all(np.diff(bounds) > 0)


@settings(max_examples=60)
@given(values_strategy, st.integers(1, 8))
def test_layered_dp_is_optimal(values, k):
    x, p1, p2, pw, _, _ = weighted_layout(values)
    k = min(k, x.size)
    bounds = np.empty(k + 1, np.int64)
    _optimal_kernels.optimal_partition(pw, p1, p2, k, bounds)
    _check_partition(bounds, x.size, k)
    counts = np.diff(pw).tolist()
    best = dp_sse(values, k)
    assert partition_sse(x.tolist(), counts, bounds) <= best * (1 + 1e-9) + 1e-9


@settings(max_examples=60)
@given(values_strategy, st.floats(0, 1e5))
def test_penalized_dp_is_optimal(values, penalty):
    x, p1, p2, pw, _, _ = weighted_layout(values)
    m = x.size
    f, arg = np.empty(m + 1), np.empty(m + 1, np.int64)
    cand, start = np.empty(m + 1, np.int64), np.empty(m + 1, np.int64)
    count = _optimal_kernels.penalized_partition(pw, p1, p2, penalty, f, arg, cand, start)
    bounds = [m]
    while bounds[-1] > 0:
        bounds.append(int(arg[bounds[-1]]))
    bounds = bounds[::-1]
    assert len(bounds) - 1 == count
    ours = partition_sse(x.tolist(), np.diff(pw).tolist(), bounds) + penalty * count
    best = min(dp_sse(values, c) + penalty * c for c in range(1, m + 1))
    assert ours <= best * (1 + 1e-9) + 1e-9


def _sse(x, bounds, centroids):
    return math.fsum(
        math.fsum((x[bounds[j] : bounds[j + 1]] - centroids[j]) ** 2) for j in range(centroids.size)
    )


start_strategy = st.lists(st.integers(-20, 20).map(float), min_size=1, max_size=8)


@settings(max_examples=60)
@given(values_strategy, start_strategy, st.integers(2, 5))
def test_lloyd_mse_never_rises(values, start, block):
    layout = unit_layout(values, block)
    x = layout[0]
    _sorted_kernels.block_prefix(x, block, layout[5], layout[1], layout[2])
    history = []
    for max_iter in range(1, 8):
        centroids = np.sort(np.array(start))
        bounds = np.empty(centroids.size + 1, np.int64)
        iterations, kept = _lloyd_kernels.lloyd(*layout, centroids, bounds, max_iter)
        assert iterations <= max_iter and 1 <= kept <= len(start)
        history.append(_sse(x, bounds[: kept + 1], centroids[:kept]))
    assert all(b <= a * (1 + 1e-12) + 1e-12 for a, b in zip(history, history[1:], strict=False))


@settings(max_examples=60)
@given(values_strategy, start_strategy, st.sampled_from([1, 3]))
def test_lloyd_ends_at_a_fixed_point(values, start, block):
    layout = weighted_layout(values) if block == 1 else unit_layout(values, block)
    x = layout[0]
    centroids = np.sort(np.array(start))
    bounds = np.empty(centroids.size + 1, np.int64)
    iterations, kept = _lloyd_kernels.lloyd(*layout, centroids, bounds, 1000)
    assert iterations < 1000
    c, b = centroids[:kept], bounds[: kept + 1]
    assert np.all(np.diff(b) > 0) and b[0] == 0 and b[-1] == x.size  # no empty cluster
    assert np.all(np.diff(c) > 0)
    weights = np.diff(layout[3]) if block == 1 else np.ones(x.size)
    for j in range(kept):
        members, w = x[b[j] : b[j + 1]], weights[b[j] : b[j + 1]]
        assert math.isclose(c[j], np.average(members, weights=w), rel_tol=1e-9, abs_tol=1e-9)
        others = np.abs(members[:, None] - c[None, :]).min(axis=1)
        assert np.all(np.abs(members - c[j]) <= others + 1e-9)  # nearest-centroid partition


@settings(max_examples=60)
@given(values_strategy, st.integers(1, 8), st.sampled_from([1, 3]))
def test_lloyd_refills_empty_clusters(values, k, block):
    layout = weighted_layout(values) if block == 1 else unit_layout(values, block)
    centroids = np.full(k, float(values.min()))  # all but the first cluster start empty
    bounds = np.empty(k + 1, np.int64)
    _, kept = _lloyd_kernels.lloyd(*layout, centroids, bounds, 1000)
    assert kept == min(k, np.unique(values).size)


@given(
    hnp.arrays(np.float64, st.integers(0, 50), elements=st.one_of(
        st.floats(-100, 100), st.sampled_from([math.nan, math.inf, -math.inf]))),
    st.lists(st.floats(-100, 100), min_size=1, max_size=20),
)
def test_assign_labels_counts_thresholds_below(values, thresholds):
    thresholds = np.sort(np.array(thresholds))
    size = 1 << (thresholds.size - 1).bit_length()
    padded = np.full(size, np.inf)
    padded[: thresholds.size] = thresholds
    labels = np.empty(values.size, np.uint8)
    _codebook_kernels.assign_labels(values, padded, labels)
    expected = np.searchsorted(thresholds, values, side="left")
    expected[~np.isfinite(values)] = 0
    assert np.array_equal(labels, expected)


@given(values_strategy, st.integers(1, 8), st.integers(0, 2**32 - 1), st.sampled_from([1, 3]))
def test_kmeans_plus_plus_draws_distinct_data_values(values, k, seed, block):
    layout = weighted_layout(values) if block == 1 else unit_layout(values, block)
    uniforms = np.random.default_rng(seed).random(k)
    first, second = np.empty(k), np.empty(k)
    placed = _lloyd_kernels.kmeans_plus_plus(*layout, uniforms, first)
    distinct = np.unique(values)
    # Cell sums of squares come from prefix sums about one shift, so a squared gap below
    # float64's rounding of the largest squared magnitude reads as 0 and seeding stops early
    # (Lloyd re-seeds empty clusters later); gaps of a millionth of the range are safe.
    spread = float(np.max(np.abs(distinct))) if distinct.size else 0.0
    if np.all(np.diff(distinct) > 1e-6 * spread):
        assert placed == min(k, distinct.size)
    assert 1 <= placed <= min(k, distinct.size)
    assert _lloyd_kernels.kmeans_plus_plus(*layout, uniforms, second) == placed
    assert np.array_equal(first[:placed], second[:placed])
    assert np.all(np.diff(first[:placed]) > 0) and np.isin(first[:placed], values).all()


@given(st.lists(st.integers(0, 5), min_size=1, max_size=30), st.integers(0, 5))
def test_split_points_survive_unary_packing(steps, base):
    opt = base + np.cumsum(steps)
    bits = np.zeros((2 * (opt.size + opt[-1]) + 16) // 8 + 2, np.uint8)
    popcount = np.array([bin(v).count("1") for v in range(256)], np.int64)
    _optimal_kernels._encode_splits(opt, 0, opt.size - 1, base, bits, 1)
    decoded = [_optimal_kernels._decode_split(bits, 1, t, base, popcount) for t in range(opt.size)]
    assert decoded == opt.tolist()


# ---- the NumPy twins of the cheap kernels (small tensors): the same bits as the kernels ----

twin_values = st.sampled_from([np.float32, np.float64]).flatmap(lambda dtype: hnp.arrays(
    dtype,
    st.integers(0, 300),
    elements=st.one_of(
        st.integers(-20, 20).map(float),
        st.floats(-1e3, 1e3, allow_nan=False, width=32),
        st.sampled_from([0.0, -0.0, 1e-30, -3e-20]),
    ).map(lambda value: float(dtype(value))),  # numpy 1.x: elements exact in the dtype
))


def bits(array) -> np.ndarray:
    """The bit patterns of a float array or scalar (so -0.0 and 0.0 differ)."""
    array = np.asarray(array)
    return array.view(np.uint64 if array.dtype == np.float64 else np.uint32)


@given(twin_values, st.sampled_from([1, 3, 64]), st.floats(-5, 5, width=32))
def test_block_prefix_twin_has_the_kernels_bits(values, block, shift):
    x = np.sort(values)
    outs = [(np.empty(x.size // block + 1), np.empty(x.size // block + 1)) for _ in range(2)]
    counts = [f(x, block, shift, *out) for f, out in
              zip((_sorted_kernels.block_prefix, _twins.block_prefix), outs, strict=False)]
    assert counts[0] == counts[1]
    for ours, theirs in zip(*outs, strict=False):
        assert np.array_equal(bits(ours), bits(theirs))


@given(twin_values)
def test_run_lengths_twin_has_the_kernels_bits(values):
    x = np.sort(values)
    n = np.unique(x).size
    got = [(np.empty(n), np.empty(n)) for _ in range(2)]
    _sorted_kernels.run_lengths(x, *got[0])
    _twins.run_lengths(x, *got[1])
    assert np.array_equal(bits(got[0][0]), bits(got[1][0])) and np.array_equal(got[0][1], got[1][1])


@given(twin_values, st.sampled_from([1, 3]), st.data())
def test_partition_twins_have_the_kernels_bits(values, block, data):
    assume(values.size > 0)
    layout = weighted_layout(values) if block == 1 else unit_layout(values, block)
    x = layout[0]
    cuts = sorted(data.draw(st.lists(st.integers(0, x.size), max_size=6)))
    bounds = np.array([0, *cuts, x.size], np.int64)
    centroids = np.array(data.draw(st.lists(st.floats(-1e3, 1e3), min_size=bounds.size - 1,
                                            max_size=bounds.size - 1)))
    sse = [f(x, layout[3], block, bounds, centroids)
           for f in (_sorted_kernels.partition_sse, _twins.partition_sse)]
    assert bits(sse[0]) == bits(sse[1])
    if block == 1:
        c = bounds.size - 1
        sums = [[np.empty(c) for _ in range(3)] for _ in range(2)]
        _sorted_kernels.partition_sums(*layout, bounds, *sums[0])
        _twins.partition_sums(*layout, bounds, *sums[1])
        for ours, theirs in zip(*sums, strict=False):
            assert np.array_equal(bits(ours), bits(theirs))


@given(hnp.arrays(np.float64, st.integers(0, 200), elements=st.one_of(
           st.floats(-100, 100), st.sampled_from([math.nan, math.inf, -math.inf, -0.0]))),
       st.lists(st.floats(-100, 100), min_size=1, max_size=20, unique=True))
def test_assign_labels_twin_gives_the_kernels_labels(values, thresholds):
    thresholds = np.sort(np.array(thresholds))
    size = 1 << (thresholds.size - 1).bit_length()
    padded = np.full(size, np.inf)
    padded[: thresholds.size] = thresholds
    labels = [np.full(values.size, 99, np.uint8) for _ in range(2)]
    _codebook_kernels.assign_labels(values, padded, labels[0])
    _twins.assign_labels(values, padded, labels[1])
    assert np.array_equal(labels[0], labels[1])


# Compiled, numba's float() of a float32 stays float32, so the kernel takes float32 differences;
# with the JIT disabled it is Python's float(), float64. The twin follows the compiled kernel.
@pytest.mark.parametrize("dtype", [
    np.float64,
    pytest.param(np.float32, marks=pytest.mark.skipif(
        numba.config.DISABLE_JIT, reason="the uncompiled kernel widens float32 (see above)")),
])
@given(data=st.data())
def test_apply_codebook_twin_has_the_kernels_bits(dtype, data):
    values = data.draw(hnp.arrays(dtype, st.integers(0, 200), elements=st.one_of(
        st.floats(-1e3, 1e3, width=32), st.sampled_from([math.nan, math.inf, -math.inf, -0.0]))))
    book = data.draw(hnp.arrays(dtype, st.integers(1, 8), elements=st.floats(-1e3, 1e3, width=32)))
    labels = data.draw(hnp.arrays(np.uint8, values.size, elements=st.integers(0, book.size - 1)))
    outs = [(np.empty(values.size, dtype), np.zeros(book.size, np.uint8)) for _ in range(2)]
    sums = [f(values, labels, book, *out) for f, out in
            zip((_codebook_kernels.apply_codebook, _twins.apply_codebook), outs, strict=False)]
    assert np.array_equal(bits(outs[0][0]), bits(outs[1][0]))
    assert np.array_equal(outs[0][1], outs[1][1])
    assert [bits(np.float64(v)) for v in sums[0][:3]] == [bits(np.float64(v)) for v in sums[1][:3]]
    assert sums[0][3] == sums[1][3]


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the uncompiled kernel widens float32")
def test_apply_codebook_twin_overflows_as_the_kernel_does():
    # float32 differences and squares past 3.4e38 become inf in both.
    values = np.array([3e38, -3e38, 1.0, 2e19], np.float32)
    book = np.array([-3e38, 3e38, 1.0], np.float32)
    labels = np.array([0, 1, 2, 2], np.uint8)
    outs = [(np.empty(4, np.float32), np.zeros(3, np.uint8)) for _ in range(2)]
    sums = [f(values, labels, book, *out) for f, out in
            zip((_codebook_kernels.apply_codebook, _twins.apply_codebook), outs, strict=False)]
    assert sums[0][:3] == sums[1][:3] == (math.inf, math.inf, math.inf)
    assert np.array_equal(bits(outs[0][0]), bits(outs[1][0]))


def test_kernel_modules_fingerprint_the_kernel_modules_they_compile_in():
    # numba's cache sees only the file of the function it caches: a kernel that compiles in
    # a helper from another kernel module must change whenever that module does.
    engine = Path(_sorted_kernels.__file__).parent
    for path in sorted(engine.glob("_*_kernels.py")):
        text = path.read_text()
        imported = set(re.findall(r"^from \.(_\w+_kernels) import", text, re.MULTILINE))
        module = importlib.import_module(f"minigraph.engine.{path.stem}")
        declared = getattr(module, "DEPENDS_ON", {})
        assert set(declared) == {f"{name}.py" for name in imported}, path.name
        for name, fingerprint in declared.items():
            source = (engine / name).read_bytes().replace(b"\r\n", b"\n")
            current = hashlib.sha256(source).hexdigest()[:16]
            assert fingerprint == current, (
                f"{name} changed: set DEPENDS_ON[{name!r}] = {current!r} in {path.name}")


def test_kernels_preferred_runs_small_arrays_on_the_kernels_with_the_same_results(monkeypatch):
    from minigraph.engine import _twins, cluster, kernels_preferred, substitute

    values = np.random.default_rng(8).laplace(0, 1, 5000).astype(np.float32)
    twin_run = cluster(values, 8)
    twin_new, _ = substitute(values, twin_run.labels, twin_run.centroids)

    def refused(*args, **kwargs):
        raise AssertionError("a twin ran")

    for name in ("block_prefix", "run_lengths", "assign_labels", "apply_codebook"):
        monkeypatch.setattr(_twins, name, refused)
    with pytest.raises(AssertionError, match="a twin ran"):  # outside: the twins serve it
        cluster(values, 8)
    with kernels_preferred():
        kernel_run = cluster(values, 8)
        kernel_new, _ = substitute(values, kernel_run.labels, kernel_run.centroids)
    assert np.array_equal(kernel_run.centroids, twin_run.centroids)
    assert np.array_equal(kernel_run.labels, twin_run.labels)
    assert np.array_equal(kernel_new.view(np.uint32), twin_new.view(np.uint32))
    assert _twins.small(5000)  # and the preference ends with the context
