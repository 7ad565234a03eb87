"""Cluster counts per tensor from all-k error curves: under a bit budget, or an SQNR floor."""

# A tensor (or, with per-group palettes, a tensor whose groups share one k) is a "unit" with
# n weights, a palette entry size and its optimal MSE for every k (engine.error_curve).
# Choosing one k per unit so the total cost fits a budget and the summed distortion is least
# is a multiple-choice knapsack. It is solved exactly by a dynamic program over units that
# keeps only the Pareto frontier of (cost, distortion) of the units seen so far, dropping
# states that even the linear relaxation of the remaining units cannot bring under a feasible
# solution's value (the dominance and LP bounds of Sinha & Zoltners 1979). Where the frontier
# would pass _PAIR_CAP pairs in a step (or ten times that in all) the greedy solution is
# returned instead: upgrades in order of distortion saved per bit, which follows the
# Lagrangian relaxation's lower convex hull, then fills what budget is left.

from __future__ import annotations

import heapq
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import packing
from .errors import ClusteringError

__all__ = ["OBJECTIVES", "DEFAULT_OBJECTIVE", "Unit", "Allocation", "index_bits",
           "bits_per_index", "cost_bits", "allocate", "smallest_k_for_sqnr", "sqnr_db", "measure",
           "check_options", "plan", "choose", "achieved", "short_of"]

# "relative": sum over units of MSE / mean square (each tensor's noise-to-signal ratio, as
# if every layer mattered alike); "weighted": the same, each term times the unit's weights.
OBJECTIVES = ("relative", "weighted")
DEFAULT_OBJECTIVE = "relative"
_PAIR_CAP = 4_000_000  # (frontier point, choice) pairs in one step before the greedy fallback


@dataclass(frozen=True)
class Unit:
    """What one k is chosen for: n weights sharing one k, the bytes of a palette entry, their
    MSE (K,) for k = 1..K, their mean square, and how many palettes of k entries they take
    (a tensor clustered per group of output channels: one per group, its curve the groups'
    optimal MSEs averaged by weight)."""

    n: int
    itemsize: int
    curve: np.ndarray
    mean_square: float
    palettes: int = 1


@dataclass(frozen=True)
class Allocation:
    """The chosen k per unit, their total cost in bits, the objective and the solver used."""

    ks: tuple[int, ...]
    bits: int
    objective: float
    solver: str  # "exact" or "greedy"
    objective_name: str = DEFAULT_OBJECTIVE


def index_bits(k: int, n: int, palette: bool) -> int:
    """Bits the indices of n weights take with k entries.

    Palette form: what minigraph.palette writes, ceil(log2 k) bits (at least 1) packed
    64 // bits to an int64 word, or one uint8 per index where that is smaller (8 bits, or
    fewer than 8 with a word wasting more than a byte). Values form: n * ceil(log2 k), 0 at
    k = 1 (what an entropy coder such as gzip can at best reach for uniform use).
    """
    if not palette:
        return n * (int(k) - 1).bit_length()
    bits = packing.bits_for(k)
    packed = packing.WORD_BITS * -(-n // packing.per_word(bits))
    return min(8 * n, packed) if bits <= 8 else packed


def bits_per_index(k: int, palette: bool) -> int:
    """Bits of one index at k entries: ceil(log2 k), at least 1 in the palette form."""
    return packing.bits_for(k) if palette else (int(k) - 1).bit_length()


def short_of(sqnr: float | None, floor: float | None) -> bool:
    """True if a floor is set and a measured SQNR (None: no error) is below it."""
    return floor is not None and sqnr is not None and sqnr < floor


def cost_bits(unit: Unit, k: int, palette: bool) -> int:
    """A unit's cost at k: its indices, plus (palette form) its palettes of k entries."""
    entries = unit.palettes * int(k) if palette else 0
    return index_bits(k, unit.n, palette) + 8 * unit.itemsize * entries


def sqnr_db(mse: float, mean_square: float) -> float:
    """10 log10(mean square / MSE); +inf without error, -inf without signal."""
    if mse <= 0:
        return math.inf
    return 10 * math.log10(mean_square / mse) if mean_square > 0 else -math.inf


def smallest_k_for_sqnr(unit: Unit, db: float) -> int:
    """Smallest k whose curve's SQNR is at least ``db``; the curve's largest k if none is."""
    if unit.mean_square <= 0:
        return 1
    ok = np.flatnonzero(unit.curve <= unit.mean_square * 10.0 ** (-db / 10.0))
    return int(ok[0]) + 1 if ok.size else int(unit.curve.size)


def _candidates(unit: Unit, palette: bool, objective: str
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ks, costs, distortions) of the unit's Pareto-efficient k, by ascending cost."""
    ks = np.arange(1, unit.curve.size + 1)
    costs = np.array([cost_bits(unit, int(k), palette) for k in ks], np.int64)
    scale = (unit.n if objective == "weighted" else 1.0) / unit.mean_square \
        if unit.mean_square > 0 else 0.0
    values = unit.curve * scale
    order = np.lexsort((ks, costs))
    ks, costs, values = ks[order], costs[order], values[order]
    best_before = np.concatenate(([np.inf], np.minimum.accumulate(values)[:-1]))
    keep = values < best_before  # strictly better than everything cheaper (or as cheap)
    return ks[keep], costs[keep], values[keep]


def allocate(units: Sequence[Unit], bits_per_weight: float, *, palette: bool,
             objective: str | None = None) -> Allocation:
    """Choose k per unit minimising the objective with total cost <= bits_per_weight * weights.

    Parameters
    ----------
    units : sequence of Unit
        Each with its MSE curve for k = 1..K (K the largest k allowed).
    bits_per_weight : float
        Budget per weight on average over all units (indices plus, in the palette form,
        the palettes: see `cost_bits`).
    palette : bool
        Count the palette form's costs (else the values form's index bits only).
    objective : {"relative", "weighted"}, optional
        Sum of MSE / mean square over units, or the same weighted by each unit's weights;
        `DEFAULT_OBJECTIVE` if not given.

    Returns
    -------
    Allocation
        ``solver`` is "exact" for the exact optimum, "greedy" where the exact frontier grew
        past its cap (then the greedy solution, feasible but not proven optimal).

    Raises
    ------
    ClusteringError
        If even k = 1 everywhere costs more than the budget, or the objective is unknown.
    """
    objective = objective or DEFAULT_OBJECTIVE
    if objective not in OBJECTIVES:
        raise ClusteringError(f"objective must be one of {', '.join(OBJECTIVES)}; "
                              f"got {objective!r}")
    budget = math.floor(bits_per_weight * sum(unit.n for unit in units))
    cands = [_candidates(unit, palette, objective) for unit in units]
    least = sum(int(c[1][0]) for c in cands)
    if least > budget:
        weights = max(sum(unit.n for unit in units), 1)
        raise ClusteringError(
            f"a budget of {bits_per_weight:g} bits per weight is below the least the "
            f"{len(units)} tensors to cluster can take ({least / weights:.3g} bits per weight, "
            f"every tensor at k=1)")
    greedy = _greedy(cands, budget)
    upper = sum(float(c[2][j]) for c, j in zip(cands, greedy, strict=True))
    exact = _frontier(cands, budget, upper)
    picks, solver = (greedy, "greedy") if exact is None else (exact, "exact")
    ks = tuple(int(c[0][j]) for c, j in zip(cands, picks, strict=True))
    bits = sum(int(c[1][j]) for c, j in zip(cands, picks, strict=True))
    value = sum(float(c[2][j]) for c, j in zip(cands, picks, strict=True))
    return Allocation(ks, bits, value, solver, objective)


def _greedy(cands: list, budget: int) -> list[int]:
    """Start every unit at its cheapest choice; repeatedly take the upgrade that saves the
    most distortion per bit among those that still fit (a unit's best fitting upgrade only
    worsens as the budget is spent, so stale heap entries are recomputed when popped)."""
    picks = [0] * len(cands)
    left = budget - sum(int(c[1][0]) for c in cands)
    heap: list[tuple[float, int, int]] = []

    def push(i: int) -> None:
        _, costs, values = cands[i]
        j = picks[i]
        extra = costs[j + 1:] - costs[j]
        fits = np.flatnonzero(extra <= left)
        if fits.size:
            rate = (values[j + 1:][fits] - values[j]) / extra[fits]
            best = int(fits[int(np.argmin(rate))])
            heapq.heappush(heap, (float(rate.min()), i, j + 1 + best))

    for i in range(len(cands)):
        push(i)
    while heap:
        _, i, j = heapq.heappop(heap)
        extra = int(cands[i][1][j] - cands[i][1][picks[i]])
        if j <= picks[i]:
            continue
        if extra > left:
            push(i)  # no longer fits: this unit's best that does
            continue
        left -= extra
        picks[i] = j
        push(i)
    return picks


def _hull(costs: np.ndarray, values: np.ndarray) -> list[int]:
    """Lower convex hull of a unit's Pareto points (costs ascending, values descending)."""
    keep: list[int] = []
    for j in range(costs.size):
        while len(keep) >= 2:
            a, b = keep[-2], keep[-1]
            if (values[b] - values[a]) * (costs[j] - costs[a]) < \
                    (values[j] - values[a]) * (costs[b] - costs[a]):
                break
            keep.pop()  # b lies on or above the chord from a to j
        keep.append(j)
    return keep


def _segments(cands: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per unit, the (cost, distortion) steps along its lower convex hull."""
    out = []
    for _, costs, values in cands:
        hull = _hull(costs, values)
        out.append((np.diff(costs[hull]).astype(np.float64), np.diff(values[hull])))
    return out


def _relaxation(cands: list, segments: list) -> tuple[np.ndarray, np.ndarray]:
    """The linear relaxation of units' knapsack: least total distortion as a function of
    their total cost, piecewise linear and convex, as (costs, values) breakpoints. Below the
    first cost nothing fits; past the last, more budget buys nothing."""
    base_cost = float(sum(int(c[1][0]) for c in cands))
    base_value = float(sum(float(c[2][0]) for c in cands))
    dc = np.concatenate([np.zeros(0)] + [seg[0] for seg in segments])
    dv = np.concatenate([np.zeros(0)] + [seg[1] for seg in segments])
    order = np.argsort(dv / dc, kind="stable")  # steepest descent first: Dantzig's greedy
    return (np.concatenate(([base_cost], base_cost + np.cumsum(dc[order]))),
            np.concatenate(([base_value], base_value + np.cumsum(dv[order]))))


def _frontier(cands: list, budget: int, upper: float) -> list[int] | None:
    """Exact optimum by a DP over units keeping the Pareto frontier of (cost, distortion);
    None past _PAIR_CAP pairs in a step or ten times that in all. A state is dropped when even the linear
    relaxation of the units left, with the budget left, cannot bring it under ``upper``
    (a feasible solution's value) or nothing fits the budget left."""
    m = len(cands)
    segments = _segments(cands)
    rest = [_relaxation(cands[i + 1:], segments[i + 1:]) for i in range(m)]
    slack = 1e-9 * max(abs(upper), 1e-300)
    cost, value = np.zeros(1, np.int64), np.zeros(1)
    steps, work = [], 0
    for i, (_, c, v) in enumerate(cands):
        work += cost.size * c.size
        if cost.size * c.size > _PAIR_CAP or work > 10 * _PAIR_CAP:
            return None
        all_cost = (cost[:, None] + c[None, :]).ravel()
        all_value = (value[:, None] + v[None, :]).ravel()
        left = (budget - all_cost).astype(np.float64)
        bound = np.interp(left, rest[i][0], rest[i][1])
        ok = np.flatnonzero((left >= rest[i][0][0]) & (all_value + bound <= upper + slack))
        order = ok[np.lexsort((all_value[ok], all_cost[ok]))]
        vals = all_value[order]
        best_before = np.concatenate(([np.inf], np.minimum.accumulate(vals)[:-1]))
        order = order[vals < best_before]
        steps.append(order)
        cost, value = all_cost[order], all_value[order]
    if cost.size == 0:  # only by rounding: the greedy solution is within the bounds
        return None
    at = int(np.argmin(value))
    picks = [0] * m
    for i in range(m - 1, -1, -1):
        flat = int(steps[i][at])
        at, picks[i] = divmod(flat, cands[i][1].size)
    return picks


def measure(values: np.ndarray, k_max: int, itemsize: int | None = None) -> Unit:
    """A tensor's unit: its optimal MSE for k = 1..k_max and mean square (finite values);
    ``itemsize``: bytes of a palette entry, if not the values' own (bfloat16 decodes as
    float32)."""
    from .engine import error_curve  # numba loads with the engine, not at import

    flat = values.reshape(-1)
    total, count = 0.0, 0
    for start in range(0, flat.size, 1 << 20):  # float64 sums, a bounded slice at a time
        part = flat[start:start + (1 << 20)].astype(np.float64)
        part = part[np.isfinite(part)]
        total += float(np.dot(part, part))
        count += part.size
    return Unit(int(flat.size), int(itemsize or flat.dtype.itemsize), error_curve(flat, k_max),
                total / count if count else 0.0)


def check_options(bits_per_weight: object, min_sqnr: object, global_clusters: bool) -> None:
    """Reject a bad budget option (one sentence naming it), as the engine's check_options does."""
    for name, value, lowest in (("bits_per_weight", bits_per_weight, 0.0),
                                ("min_sqnr", min_sqnr, -math.inf)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value <= lowest:
            raise ClusteringError(f"{name} must be a finite number"
                                  f"{' > 0' if lowest == 0 else ''}, got {value!r}")
    if bits_per_weight is not None and min_sqnr is not None:
        raise ClusteringError("bits_per_weight and min_sqnr exclude each other; give one")
    if global_clusters and (bits_per_weight is not None or min_sqnr is not None):
        raise ClusteringError("a global codebook has one k for the whole graph: it takes no "
                              "per-tensor bits_per_weight or min_sqnr")


def plan(loaders: Sequence[Callable[[], np.ndarray]], itemsizes: Sequence[int], k_max: int, *,
         bits_per_weight: float | None, min_sqnr: float | None, palette: bool,
         workers: int) -> tuple[list[Unit], list[int], dict]:
    """Units (error curves on ``workers`` threads: the kernels release the GIL), k per unit
    and what the report says of the choice; each loader returns one tensor's values, each
    itemsize is the bytes of one of its palette entries."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        units = list(pool.map(lambda load, size: measure(load(), k_max, size), loaders,
                              itemsizes))
    ks, chosen = choose(units, bits_per_weight=bits_per_weight, min_sqnr=min_sqnr,
                        palette=palette)
    return units, ks, chosen


def achieved(units: Sequence[Unit], ks: Sequence[int], palette: bool) -> dict:
    """Weights and average bits per weight of units at the given k (indices + palettes)."""
    weights = sum(unit.n for unit in units)
    spent = sum(cost_bits(unit, k, palette) for unit, k in zip(units, ks, strict=True))
    return {"weights": weights, "average_bits_per_weight": spent / weights if weights else 0.0}


def choose(units: Sequence[Unit], *, bits_per_weight: float | None, min_sqnr: float | None,
           palette: bool) -> tuple[list[int], dict]:
    """k per unit for a budget or an SQNR floor, and what the report says of the choice."""
    if min_sqnr is not None:
        return [smallest_k_for_sqnr(unit, min_sqnr) for unit in units], \
            {"min_sqnr": min_sqnr, "palette_form": palette}
    if bits_per_weight is None:
        raise ClusteringError("choose needs bits_per_weight or min_sqnr; got neither")
    found = allocate(units, bits_per_weight, palette=palette)
    return list(found.ks), {"bits_per_weight": bits_per_weight, "objective": found.objective_name,
                            "solver": found.solver, "palette_form": palette}
