"""Bit allocation: costs by hand, the exact solver against brute force, SQNR floors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigraph.curves import measure as budget_measure
from minigraph.curves import measure_groups as budget_measure_groups
from minigraph.budget import (Unit, allocate, cost_bits, index_bits, smallest_k_for_sqnr,
                              sqnr_db)
from minigraph.budget import choose as budget_choose
from minigraph.engine import cluster
from minigraph.errors import ClusteringError


def test_index_bits_by_hand():
    # values form: ceil(log2 k) bits per weight, none at k = 1
    assert [index_bits(k, 10, False) for k in (1, 2, 3, 4, 5, 256)] == [0, 10, 20, 20, 30, 80]
    # palette form, 1000 weights: 1 bit at k <= 2 (64 per word: 16 words), 3 bits: 21 per
    # word -> 48 words; 5 bits: 12 per word -> 84 words = 5376 bits; 7 bits: 9 per word ->
    # 112 words = 7168 < 8000; 8 bits: uint8, 8000.
    assert index_bits(1, 1000, True) == 16 * 64
    assert index_bits(8, 1000, True) == 48 * 64
    assert index_bits(32, 1000, True) == 84 * 64
    assert index_bits(128, 1000, True) == 112 * 64
    assert index_bits(256, 1000, True) == 8000
    unit = Unit(1000, 4, np.zeros(256), 1.0)
    assert cost_bits(unit, 4, True) == 32 * 64 + 4 * 32  # 2 bits: 32 per word, 4 float32s
    assert cost_bits(unit, 4, False) == 2000


def _unit(rng, k_max: int) -> Unit:
    n = int(rng.integers(1, 200))
    drops = rng.random(k_max) * rng.choice([0.0, 1.0], k_max, p=[0.2, 0.8])
    curve = np.cumsum(drops[::-1])[::-1] / 10 + rng.random() * (rng.random() < 0.5)
    return Unit(n, int(rng.choice([2, 4, 8])), curve, float(rng.random() * 5))


def _brute(units, budget_bits, palette, objective):
    best = math.inf
    for ks in itertools.product(*[range(1, u.curve.size + 1) for u in units]):
        cost = sum(cost_bits(u, k, palette) for u, k in zip(units, ks, strict=True))
        if cost > budget_bits:
            continue
        value = sum(u.curve[k - 1] / u.mean_square * (u.n if objective == "weighted" else 1)
                    for u, k in zip(units, ks, strict=True))
        best = min(best, value)
    return best


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.booleans(),
       st.sampled_from(["relative", "weighted"]), st.floats(0.5, 6))
def test_exact_solver_equals_brute_force(seed, n_units, palette, objective, bits):
    rng = np.random.default_rng(seed)
    units = [_unit(rng, 4 if n_units > 4 else 6) for _ in range(n_units)]
    budget = math.floor(bits * sum(u.n for u in units))
    want = _brute(units, budget, palette, objective)
    if want == math.inf:
        with pytest.raises(ClusteringError, match="below the least"):
            allocate(units, bits, palette=palette, objective=objective)
        return
    got = allocate(units, bits, palette=palette, objective=objective)
    assert got.solver == "exact"
    assert got.bits <= budget
    assert got.bits == sum(cost_bits(u, k, palette) for u, k in zip(units, got.ks, strict=True))
    assert got.objective == pytest.approx(want, rel=1e-12, abs=1e-12)


def _brute_alternatives(tensors, budget_bits, palette):
    best = math.inf
    choices = [[(unit, k) for unit in alternatives for k in range(1, unit.curve.size + 1)]
               for alternatives in tensors]
    for picks in itertools.product(*choices):
        if sum(cost_bits(unit, k, palette) for unit, k in picks) <= budget_bits:
            best = min(best, sum(unit.curve[k - 1] / unit.mean_square for unit, k in picks))
    return best


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.floats(0.5, 6))
def test_alternatives_per_tensor_equal_brute_force(seed, n_tensors, bits):
    # Each tensor measured one to three ways (one palette, or several: same weights, its own
    # curve and palette count), as choose_ks offers group sizes.
    rng = np.random.default_rng(seed)
    tensors = []
    for _ in range(n_tensors):
        base = _unit(rng, 4)
        tensors.append([base] + [Unit(base.n, base.itemsize, _unit(rng, 4).curve,
                                      base.mean_square, palettes=int(rng.integers(2, 5)))
                                 for _ in range(int(rng.integers(0, 3)))])
    budget = math.floor(bits * sum(alternatives[0].n for alternatives in tensors))
    want = _brute_alternatives(tensors, budget, True)
    if want == math.inf:
        with pytest.raises(ClusteringError, match="below the least"):
            allocate(tensors, bits, palette=True)
        return
    got = allocate(tensors, bits, palette=True)
    picked = [alternatives[v] for alternatives, v in zip(tensors, got.variants, strict=True)]
    assert got.bits == sum(cost_bits(u, k, True) for u, k in zip(picked, got.ks, strict=True))
    assert got.bits <= budget
    assert got.objective == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert got.objective == pytest.approx(sum(
        u.curve[k - 1] / u.mean_square for u, k in zip(picked, got.ks, strict=True)))


def test_sqnr_floor_with_alternatives_takes_the_cheapest_that_reaches_it():
    # 1000 weights. One palette reaches 30 dB at k = 8 (3 bits: 48 words = 3072 bits, + 8
    # float32 = 256: 3328); four palettes reach it at k = 4 (2 bits: 32 words = 2048, + 4 x 4
    # float32 = 512: 2560): the grouped way is cheaper. With 16 palettes (4 x 16 x 32 = 2048
    # bits of palettes: 4096) it is not.
    one = Unit(1000, 4, np.array([1.0, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01, 0.001]), 1.0)
    four = Unit(1000, 4, np.array([1.0, 0.1, 0.01, 0.001]), 1.0, palettes=4)
    sixteen = Unit(1000, 4, four.curve, 1.0, palettes=16)
    assert cost_bits(one, 8, True) == 3328 and cost_bits(four, 4, True) == 2560
    assert cost_bits(sixteen, 4, True) == 4096
    ks, variants, info = budget_choose([[one, four]], bits_per_weight=None, min_sqnr=30,
                                       palette=True)
    assert (ks, variants) == ([4], [1]) and info["min_sqnr"] == 30
    assert budget_choose([[one, sixteen]], bits_per_weight=None, min_sqnr=30,
                         palette=True)[:2] == ([8], [0])
    # No way reaches 50 dB: the least relative error at the largest k (four: 0.001 at k = 4
    # ties one's 0.001 at k = 8; the first way wins ties).
    assert budget_choose([[one, four]], bits_per_weight=None, min_sqnr=50,
                         palette=True)[:2] == ([8], [0])


def test_objective_never_rises_with_the_budget():
    rng = np.random.default_rng(7)
    units = [_unit(rng, 16) for _ in range(5)]
    values = [allocate(units, b, palette=True).objective for b in np.linspace(2.5, 9, 40)]
    assert all(b <= a for a, b in zip(values[:-1], values[1:], strict=True))
    assert values[-1] < values[0]


def test_a_budget_below_k1_everywhere_is_refused():
    units = [Unit(100, 4, np.array([1.0, 0.5]), 1.0)]
    # palette form at k = 1: 100 1-bit indices in 2 words (128 bits) + one float32 (32 bits)
    assert allocate(units, 1.6, palette=True).ks == (1,)
    with pytest.raises(ClusteringError, match="1.6 bits per weight"):
        allocate(units, 1.59, palette=True)


def test_greedy_fallback_is_feasible(monkeypatch):
    import minigraph.budget as budget

    monkeypatch.setattr(budget, "_PAIR_CAP", 1)
    rng = np.random.default_rng(3)
    units = [_unit(rng, 8) for _ in range(4)]
    got = allocate(units, 3.0, palette=True)
    assert got.solver == "greedy"
    assert got.bits <= 3.0 * sum(u.n for u in units)


def test_sqnr_floor_by_hand():
    unit = Unit(10, 4, np.array([1.0, 0.1, 0.01, 0.001]), 10.0)  # SQNR 10, 20, 30, 40 dB
    assert smallest_k_for_sqnr(unit, 30) == 3
    assert smallest_k_for_sqnr(unit, 30.1) == 4
    assert smallest_k_for_sqnr(unit, 50) == 4  # none reaches it: the largest k
    assert smallest_k_for_sqnr(Unit(10, 4, np.zeros(4), 0.0), 30) == 1
    assert sqnr_db(0.01, 10.0) == pytest.approx(30.0)


# compress() with a per-tensor k: the wiring, on graphs whose golden facts are hand-made.

from minigraph import from_array, read_graph, to_array  # noqa: E402
from minigraph.cli import main  # noqa: E402
from minigraph.compress import Options, compress_in_place  # noqa: E402
from minigraph.graph import iter_consts  # noqa: E402
from minigraph.palette import expand, find_palettes  # noqa: E402
from minigraph.schema import GraphDef  # noqa: E402

from conftest import FIXTURES  # noqa: E402


def _graph(arrays: dict) -> GraphDef:
    graph_def = GraphDef()
    for name, values in arrays.items():
        node = graph_def.node.add(name=name, op="Const")
        node.attr["dtype"].type = 1
        node.attr["value"].tensor.CopyFrom(from_array(np.asarray(values, np.float32)))
    return graph_def


def _palette_index_bits(n: int, k: int) -> int:
    """By hand from the palette layout: b = ceil(log2 k) >= 1 bits, 64 // b per int64 word,
    or one uint8 per index where that is smaller."""
    b = max(1, math.ceil(math.log2(k)))
    return min(8 * n, 64 * math.ceil(n / (64 // b)))


@pytest.mark.parametrize("bits", [1.5, 2.0, 3.0, 5.0])
def test_budget_is_kept_and_each_tensor_is_palettized_at_its_own_width(bits):
    graph_def = read_graph(FIXTURES / "mlp_digits.pb")
    report = compress_in_place(graph_def, Options(bits_per_weight=bits, palettize=True))
    rows = report.clustered
    assert len(rows) == 3
    # One palette of k float32 entries per tensor, or per group where the budget chose groups.
    spent = sum(_palette_index_bits(row.elements, row.k) + 32 * row.k * (row.groups or 1)
                for row in rows)
    weights = sum(row.elements for row in rows)
    assert spent <= bits * weights
    assert report.budget["average_bits_per_weight"] == pytest.approx(spent / weights)
    for row in rows:
        assert row.distinct_after <= row.k * (row.groups or 1)
        assert row.bits == max(1, math.ceil(math.log2(row.k)))
        # Small tensors may take uint8 indices where their fewer decode nodes make the file
        # smaller than packed words would (palette_plan.choose_layout measures both).
        assert row.palette_bits == row.bits or (row.palette_bits == 8 and row.elements <= 65536)


def test_values_form_budget_counts_index_bits_only():
    graph_def = read_graph(FIXTURES / "mlp_digits.pb")
    report = compress_in_place(graph_def, Options(bits_per_weight=2.0))
    rows = report.clustered
    spent = sum(row.elements * math.ceil(math.log2(row.k)) for row in rows)
    assert spent <= 2.0 * sum(row.elements for row in rows)
    consts = {ref.name: ref for ref in iter_consts(graph_def)}
    for row in rows:
        assert np.unique(to_array(consts[row.name].tensor)).size <= row.k


def test_sqnr_floor_takes_the_smallest_k_that_reaches_it():
    # 3000 values with at most 4096 distinct ones: the curve is the exact optimum, so k - 1
    # clusters by the exact method must fall short of the floor and k must reach it.
    rng = np.random.default_rng(5)
    arrays = {"a": rng.laplace(0, 1, 3000), "b": rng.normal(0, 1, 3000),
              "c": rng.uniform(-1, 1, 3000)}
    report = compress_in_place(_graph(arrays), Options(min_sqnr=25.0, method="optimal"))
    assert len(report.clustered) == 3
    for row in report.clustered:
        values = np.asarray(arrays[row.name], np.float32).astype(np.float64)
        mean_square = float(np.mean(values ** 2))
        assert row.sqnr_db >= 25.0
        below = cluster(values.astype(np.float32), row.k - 1, method="optimal").mse
        assert 10 * math.log10(mean_square / below) < 25.0


def test_tensors_with_few_distinct_values_are_still_budgeted():
    # 64 distinct values would be skipped at k = 256; under a 2-bit budget they get k <= 4.
    values = np.tile(np.linspace(-1, 1, 64), 16)
    report = compress_in_place(_graph({"w": values}), Options(bits_per_weight=2.0))
    (row,) = report.clustered
    assert row.k <= 4 and row.distinct_after <= 4


@pytest.mark.parametrize("options", [dict(bits_per_weight=2.0, min_sqnr=30.0),
                                     dict(bits_per_weight=0.0), dict(bits_per_weight=math.nan),
                                     dict(min_sqnr=math.inf), dict(bits_per_weight=True),
                                     dict(bits_per_weight=2.0, global_clusters=True)])
def test_bad_budget_options_are_refused(options):
    with pytest.raises(ClusteringError):
        Options(**options).validate()


def test_numpy_numbers_are_budgets_too():
    Options(bits_per_weight=np.float32(2.5)).validate()
    Options(min_sqnr=np.int64(30)).validate()


@pytest.mark.parametrize("flags", [["--bits-per-weight", "2", "--min-sqnr", "30"],
                                   ["--bits-per-weight", "-1"], ["--min-sqnr", "x"],
                                   ["--bits-per-weight", "2", "--global-clusters"]])
def test_cli_budget_usage_errors_exit_2(flags, tmp_path, capsys):
    assert main([*flags, "-o", str(tmp_path / "out.pb"), str(FIXTURES / "mlp_digits.pb")]) == 2
    assert not (tmp_path / "out.pb").exists()


def test_cli_budget_report_json_and_text(tmp_path, capsys):
    import json

    out = tmp_path / "out.pb"
    assert main(["--bits-per-weight", "0.01", "-o", str(out), "--json",
                 str(FIXTURES / "mlp_digits.pb")]) == 0  # values form: k = 1 costs nothing
    (result,) = json.loads(capsys.readouterr().out)["files"]
    assert result["totals"]["budget"]["average_bits_per_weight"] == 0.0
    assert {t["k"] for t in result["tensors"] if t["clustered"]} == {1}
    assert main(["--bits-per-weight", "2", "-o", str(out), "-f",
                 str(FIXTURES / "mlp_digits.pb")]) == 0
    text = capsys.readouterr().out
    assert "budget 2 bits per weight (relative error, exact solver)" in text
    assert "17024 weights take 2.000 bits each (indices)" in text  # 2 bits: k = 4 everywhere


def test_palettized_file_of_large_tensors_is_within_the_budget_line():
    # Tensors above 65,536 weights take packed indices: the file is the untouched rest, the
    # budgeted payload and only the decode nodes' few KB per tensor.
    rng = np.random.default_rng(2)
    arrays = {f"w{i}": rng.laplace(0, 0.01 * (i + 1), 100_000) for i in range(3)}
    arrays["bias"] = rng.normal(0, 1, 100)
    graph_def = _graph(arrays)
    before = graph_def.ByteSize()
    report = compress_in_place(graph_def, Options(bits_per_weight=2.0, palettize=True))
    rows = report.clustered
    assert len(rows) == 3 and all(row.palette_bits == row.bits for row in rows)
    rest = before - sum(row.bytes_before for row in rows)
    payload = sum(_palette_index_bits(row.elements, row.k) + 32 * row.k for row in rows) / 8
    assert payload <= 300_000 * 2.0 / 8
    assert rest + payload < graph_def.ByteSize() <= rest + payload + 2600 * len(rows)


def test_several_palettes_per_unit_are_counted():
    # A tensor of 1000 weights in 4 groups, one palette of k float32 entries per group.
    unit = Unit(1000, 4, np.zeros(16), 1.0, palettes=4)
    assert cost_bits(unit, 16, True) == 63 * 64 + 4 * 16 * 32  # 4 bits: 16 per word, 63 words
    assert cost_bits(unit, 16, False) == 4000


def test_bfloat16_palettes_count_two_bytes_and_no_tensor_means_no_work():
    rng = np.random.default_rng(4)
    graph_def = GraphDef()
    node = graph_def.node.add(name="w", op="Const")
    node.attr["dtype"].type = 14  # DT_BFLOAT16
    node.attr["value"].tensor.CopyFrom(from_array(rng.normal(0, 1, 1000).astype(np.float32),
                                                  dtype="DT_BFLOAT16"))
    report = compress_in_place(graph_def, Options(bits_per_weight=3.25, palettize=True))
    (row,) = report.clustered
    # 3 bits: 21 per word, 48 words, + k = 8 entries of 16 bits: 3.2 bits per weight (with
    # 32-bit entries k = 8 would cost 3.328 and not fit)
    assert row.k == 8 and row.bits == 3
    assert report.budget["average_bits_per_weight"] == pytest.approx((48 * 64 + 8 * 16) / 1000)
    empty = compress_in_place(_graph({"tiny": np.ones(3)}), Options(bits_per_weight=2.0))
    assert empty.budget["weights"] == 0 and not empty.clustered


def test_sixty_tensors_are_solved_exactly_and_no_worse_than_greedy(monkeypatch):
    import minigraph.budget as budget

    rng = np.random.default_rng(9)
    k = np.arange(1, 257)
    units = [Unit(int(rng.integers(300, 2_000_000)), 4,
                  rng.uniform(0.5, 2) * k ** -2.0 + 1e-9 * rng.random(), 1.0) for _ in range(60)]
    exact = allocate(units, 3.0, palette=True)
    assert exact.solver == "exact"
    monkeypatch.setattr(budget, "_PAIR_CAP", 0)
    greedy = allocate(units, 3.0, palette=True)
    assert greedy.solver == "greedy"
    assert exact.objective <= greedy.objective
    assert max(exact.bits, greedy.bits) <= 3.0 * sum(u.n for u in units)


def test_grouped_unit_averages_group_curves_and_counts_one_palette_per_group():
    # Channels 0-1 hold {-1, 1}, channel 2 holds {10, 30}: per group of 2 channels, k = 2
    # is exact; as one tensor, k = 2 is not. Group MSE at k = 1 by hand: group 0 (8 values of
    # +-1, mean 0): 1; group 1 (4 values, mean 20): 100; averaged by count: (8 + 400) / 12.
    values = np.array([[-1.0, 1.0, 10.0], [1.0, -1.0, 30.0]] * 2)
    unit = budget_measure_groups(values, 2, 3)
    assert unit.palettes == 2 and unit.n == 12
    np.testing.assert_allclose(unit.curve, [(8 + 400) / 12, 0.0, 0.0], atol=1e-12)
    assert unit.mean_square == pytest.approx((8 + 2 * 100 + 2 * 900) / 12)
    whole = budget_measure(values, 3)
    assert whole.curve[1] > 0 and whole.palettes == 1


def test_sampled_groups_stand_for_all_but_the_mean_square_is_the_whole_tensors():
    # Four groups of one channel, each holding +-a (two values: exact at k = 2, MSE a^2 at
    # k = 1), a = 1, 2, 3, 4. Two sampled groups are the first and the last: MSE at k = 1 is
    # (1 + 16) / 2; the mean square is the whole tensor's, (1 + 4 + 9 + 16) / 4.
    values = np.array([[-1.0, -2.0, -3.0, -4.0], [1.0, 2.0, 3.0, 4.0]] * 3)
    unit = budget_measure_groups(values, 1, 2, max_groups=2)
    assert (unit.palettes, unit.n, unit.group_size) == (4, 24, 1)
    np.testing.assert_allclose(unit.curve, [17 / 2, 0.0], atol=1e-12)
    assert unit.mean_square == pytest.approx(30 / 4)
    every = budget_measure_groups(values, 1, 2)
    np.testing.assert_allclose(every.curve, [30 / 4, 0.0], atol=1e-12)


def test_cli_min_sqnr_report_lists_k_and_bits(tmp_path, capsys):
    assert main(["--min-sqnr", "30", "-o", str(tmp_path / "out.pb"),
                 str(FIXTURES / "mlp_digits.pb")]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("clustered"))
    assert header.split()[-4:] == ["k", "bits", "stored", "bytes"]
    assert "budget at least 30 dB per tensor: the 17024 weights take" in text
    assert "k≤256 per tensor" in text


def _shifted_channels(rng, rows: int, channels: int) -> np.ndarray:
    """Weights whose output channels (last axis) sit around 100 * (c // 8): eight clumps 100
    apart, one per group of 8 channels, each Laplace(0, 1) wide."""
    return rng.laplace(0, 1, (rows, channels)) + 100.0 * (np.arange(channels) // 8)


def test_budget_with_a_group_size_counts_a_palette_per_group():
    weights = _shifted_channels(np.random.default_rng(11), 256, 64)
    graph_def = _graph({"w": weights})
    report = compress_in_place(graph_def, Options(bits_per_weight=3.0, palettize=True,
                                                  group_size=8))
    (row,) = report.clustered
    assert (row.group_size, row.groups) == (8, 8)
    # 16384 weights: indices by hand, 8 palettes of k float32 entries, and the decode nodes
    # only grouping adds, measured here as the bytes the grouped form takes beyond one
    # palette per tensor at the same k and index width, less the 7 extra palette rows.
    plain = compress_in_place(_graph({"w": weights}),
                              Options(n_clusters=row.k, palettize=True)).clustered[0]
    assert plain.palette_bits == row.palette_bits
    nodes = row.bytes_after - plain.bytes_after - 7 * 4 * row.k
    assert 500 < nodes < 1000  # ten small nodes named w/<tag>
    spent = _palette_index_bits(16384, row.k) + 8 * 32 * row.k
    assert spent + 8 * nodes <= 3.0 * 16384
    assert report.budget["average_bits_per_weight"] * 16384 == pytest.approx(spent + 8 * nodes,
                                                                             abs=8 * 16)
    assert "group_sizes_tried" not in report.budget
    (info,) = find_palettes(graph_def)
    assert (info.groups, info.group_size) == (8, 8)


def test_budget_chooses_per_group_palettes_where_channel_groups_sit_apart(tmp_path, capsys):
    rng = np.random.default_rng(12)
    arrays = {"clumped": _shifted_channels(rng, 256, 64), "plain": rng.laplace(0, 1, (256, 64))}
    graph_def = _graph({**arrays, "bias": np.tile(np.arange(8.0) * 100, 64)})
    report = compress_in_place(graph_def, Options(bits_per_weight=3.0, palettize=True))
    rows = {row.name: row for row in report.clustered}
    assert report.budget["group_sizes_tried"] == [8, 32]
    # Only kernels (rank >= 2) are weighed per group: this vector is as clumped by 8, but one
    # palette it keeps.
    assert rows.pop("bias").group_size is None
    # By hand: a palette per clump (groups of 8 channels) at any k >= 2 leaves at most the
    # optimal 2-level error of Laplace(0, 1), E[x^2] - E[|x|]^2 = 2 - 1 = 1, for 1 bit plus 8
    # x 2 float32 entries (0.0625 bits) per weight; one palette needs k = 8, 3 bits, to give
    # each clump one entry, and still leaves the clump's variance, 2. Groups of 32 channels
    # would mix four clumps.
    assert rows["clumped"].group_size == 8
    spent = sum(_palette_index_bits(row.elements, row.k) + 32 * row.k * (row.groups or 1)
                for row in rows.values())
    assert spent <= 3.0 * 2 * 16384
    single = compress_in_place(_graph({"clumped": arrays["clumped"]}),
                               Options(n_clusters=8, palettize=True))
    assert rows["clumped"].mse < 1.5 < single.clustered[0].mse
    assert sorted(expand(graph_def)) == ["bias", "clumped", "plain"]
    restored = {ref.name: to_array(ref.tensor) for ref in iter_consts(graph_def)}
    for name in arrays:  # the palette form decodes to what expand writes, ≤ k values per group
        grid = restored[name].reshape(256, 64)
        size = rows[name].group_size or 64
        assert all(np.unique(grid[:, c:c + size]).size <= rows[name].k for c in range(0, 64, size))
    # The CLI says what it chose.
    model = tmp_path / "clumped.pb"
    model.write_bytes(_graph(arrays).SerializeToString())
    assert main(["--bits-per-weight", "3", "--palettize", "-o", str(tmp_path / "o.pb"),
                 str(model)]) == 0
    text = capsys.readouterr().out
    assert "(k ≤ 16) per group of 8, 32 output channels" in text and "8 x 8ch" in text
