"""Cluster counts per tensor from all-k error curves: under a bit budget, or an SQNR floor."""

# A tensor (or, with per-group palettes, a tensor whose groups share one k) is a "unit" with
# n weights, a palette entry size and its optimal MSE for every k (engine.error_curve).
# Choosing one k per unit so the total cost fits a budget and the summed distortion is least
# is a multiple-choice knapsack, solved in minigraph._knapsack. Units are measured in
# minigraph.curves.

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import _knapsack, packing
from .errors import ClusteringError

__all__ = ["OBJECTIVES", "DEFAULT_OBJECTIVE", "Unit", "Allocation", "index_bits",
           "bits_per_index", "cost_bits", "allocate", "smallest_k_for_sqnr", "sqnr_db",
           "check_options", "choose", "achieved", "short_of"]

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
    group_size: int | None = None  # channels per palette when measured group by group
    extra_bits: int = 0  # what else this way of storing the tensor writes (palette form only)


@dataclass(frozen=True)
class Allocation:
    """The chosen k per unit, their total cost in bits, the objective and the solver used;
    where a tensor was offered as alternative units (one palette, or one per group of
    channels), ``variants`` holds which one was chosen (0 for a single unit)."""

    ks: tuple[int, ...]
    bits: int
    objective: float
    solver: str  # "exact" or "greedy"
    objective_name: str = DEFAULT_OBJECTIVE
    variants: tuple[int, ...] = ()


def index_bits(k: int, n: int, palette: bool) -> int:
    """Bits the indices of n weights take with k entries.

    Parameters
    ----------
    k, n : int
        Entries (>= 1) and weights.
    palette : bool
        The palette form: what minigraph.palette writes for large tensors, ceil(log2 k) bits
        (at least 1) packed 64 // bits to an int64 word, or one uint8 per index where that is
        smaller. Else the values form: n * ceil(log2 k), 0 at k = 1 (what an entropy coder
        such as gzip can at best reach when the entries are used alike).

    Returns
    -------
    int
    """
    if not palette:
        return n * (int(k) - 1).bit_length()
    bits = packing.bits_for(k)
    packed = packing.WORD_BITS * -(-n // packing.per_word(bits))
    return min(8 * n, packed) if bits <= 8 else packed


def bits_per_index(k: int, palette: bool) -> int:
    """Bits of one index at k entries.

    Parameters
    ----------
    k : int
    palette : bool

    Returns
    -------
    int
        ceil(log2 k), at least 1 in the palette form (the packed layout's field width).
    """
    return packing.bits_for(k) if palette else (int(k) - 1).bit_length()


def short_of(sqnr: float | None, floor: float | None) -> bool:
    """Whether a measured SQNR falls short of a floor.

    Parameters
    ----------
    sqnr : float or None
        In dB; None when there is no error.
    floor : float or None
        In dB; None when there is no floor.

    Returns
    -------
    bool
    """
    return floor is not None and sqnr is not None and sqnr < floor


def cost_bits(unit: Unit, k: int, palette: bool) -> int:
    """A unit's cost in bits at k.

    Parameters
    ----------
    unit : Unit
    k : int
    palette : bool
        Count the palette form: indices (see `index_bits`) plus the unit's palettes of k
        entries and its ``extra_bits``; else the values form's index bits alone.

    Returns
    -------
    int
    """
    if not palette:
        return index_bits(k, unit.n, palette)
    return index_bits(k, unit.n, palette) + 8 * unit.itemsize * unit.palettes * int(k) \
        + unit.extra_bits


def sqnr_db(mse: float, mean_square: float) -> float:
    """Signal-to-quantisation-noise ratio in dB.

    Parameters
    ----------
    mse, mean_square : float

    Returns
    -------
    float
        10 log10(mean_square / mse); +inf without error, -inf without signal.
    """
    if mse <= 0:
        return math.inf
    return 10 * math.log10(mean_square / mse) if mean_square > 0 else -math.inf


def smallest_k_for_sqnr(unit: Unit, db: float) -> int:
    """The smallest k whose SQNR on the unit's curve is at least ``db``.

    Parameters
    ----------
    unit : Unit
    db : float

    Returns
    -------
    int
        That k; the curve's largest k if none reaches ``db``; 1 for a unit without signal.
    """
    if unit.mean_square <= 0:
        return 1
    ok = np.flatnonzero(unit.curve <= unit.mean_square * 10.0 ** (-db / 10.0))
    return int(ok[0]) + 1 if ok.size else int(unit.curve.size)


def _candidates(alternatives: Sequence[Unit], palette: bool, objective: str
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ks, costs, distortions, variants) of a tensor's Pareto-efficient choices of k and of
    alternative unit, by ascending cost (at equal cost and distortion: the earlier
    alternative, then the smaller k)."""
    parts = []
    for number, unit in enumerate(alternatives):
        ks = np.arange(1, unit.curve.size + 1)
        costs = np.array([cost_bits(unit, int(k), palette) for k in ks], np.int64)
        scale = (unit.n if objective == "weighted" else 1.0) / unit.mean_square \
            if unit.mean_square > 0 else 0.0
        parts.append((ks, costs, unit.curve * scale, np.full(ks.size, number)))
    ks, costs, values, variants = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.lexsort((ks, variants, values, costs))
    ks, costs, values, variants = ks[order], costs[order], values[order], variants[order]
    best_before = np.concatenate(([np.inf], np.minimum.accumulate(values)[:-1]))
    keep = values < best_before  # strictly better than everything cheaper (or as cheap)
    return ks[keep], costs[keep], values[keep], variants[keep]


def _alternatives(entry: Unit | Sequence[Unit]) -> Sequence[Unit]:
    return (entry,) if isinstance(entry, Unit) else entry


def allocate(units: Sequence[Unit | Sequence[Unit]], bits_per_weight: float, *, palette: bool,
             objective: str | None = None) -> Allocation:
    """Choose k per unit minimising the objective with total cost <= bits_per_weight * weights.

    Parameters
    ----------
    units : sequence of Unit, or of sequences of Unit
        Each with its MSE curve for k = 1..K (K the largest k allowed). A sequence stands
        for one tensor measured in alternative ways (one palette, or one per group of
        channels: the same weights): one of them is chosen, with its k.
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
    tensors = [_alternatives(entry) for entry in units]
    weights = sum(alternatives[0].n for alternatives in tensors)
    budget = math.floor(bits_per_weight * weights)
    full = [_candidates(alternatives, palette, objective) for alternatives in tensors]
    cands = [c[:3] for c in full]
    least = sum(int(c[1][0]) for c in cands)
    if least > budget:
        weights = max(weights, 1)
        raise ClusteringError(
            f"a budget of {bits_per_weight:g} bits per weight is below the least the "
            f"{len(units)} tensors to cluster can take ({least / weights:.3g} bits per weight, "
            f"every tensor at k=1)")
    greedy = _knapsack.greedy(cands, budget)
    upper = sum(float(c[2][j]) for c, j in zip(cands, greedy, strict=True))
    exact = _knapsack.exact(cands, budget, upper, _PAIR_CAP)
    picks, solver = (greedy, "greedy") if exact is None else (exact, "exact")
    ks = tuple(int(c[0][j]) for c, j in zip(cands, picks, strict=True))
    bits = sum(int(c[1][j]) for c, j in zip(cands, picks, strict=True))
    value = sum(float(c[2][j]) for c, j in zip(cands, picks, strict=True))
    variants = tuple(int(c[3][j]) for c, j in zip(full, picks, strict=True))
    return Allocation(ks, bits, value, solver, objective, variants)


def check_options(bits_per_weight: object, min_sqnr: object, global_clusters: bool) -> None:
    """Reject a bad budget option, as the engine's check_options does.

    Parameters
    ----------
    bits_per_weight : float or None
        A finite number > 0.
    min_sqnr : float or None
        A finite number (dB); not together with `bits_per_weight`.
    global_clusters : bool
        One codebook for the graph, which has one k: refused with either option.

    Raises
    ------
    ClusteringError
        One sentence naming the option and the value given.
    """
    for name, value, lowest in (("bits_per_weight", bits_per_weight, 0.0),
                                ("min_sqnr", min_sqnr, -math.inf)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value) or value <= lowest:
            raise ClusteringError(f"{name} must be a finite number"
                                  f"{' > 0' if lowest == 0 else ''}, got {value!r}")
    if bits_per_weight is not None and min_sqnr is not None:
        raise ClusteringError("bits_per_weight and min_sqnr exclude each other; give one")
    if global_clusters and (bits_per_weight is not None or min_sqnr is not None):
        raise ClusteringError("a global codebook has one k for the whole graph: it takes no "
                              "per-tensor bits_per_weight or min_sqnr")


def achieved(units: Sequence[Unit], ks: Sequence[int], palette: bool) -> dict:
    """What units take at the given k.

    Parameters
    ----------
    units : sequence of Unit
    ks : sequence of int
    palette : bool
        Count the palette form (see `cost_bits`).

    Returns
    -------
    dict
        ``weights`` and ``average_bits_per_weight`` (0.0 without weights).
    """
    weights = sum(unit.n for unit in units)
    spent = sum(cost_bits(unit, k, palette) for unit, k in zip(units, ks, strict=True))
    return {"weights": weights, "average_bits_per_weight": spent / weights if weights else 0.0}


def _floor_choice(alternatives: Sequence[Unit], db: float, palette: bool) -> tuple[int, int]:
    """(alternative, k) for an SQNR floor: the cheapest alternative reaching it at its smallest
    such k; if none does, the one with the least relative error at its largest k."""
    picks = [(alternative, smallest_k_for_sqnr(unit, db))
             for alternative, unit in enumerate(alternatives)]

    def reached(pick: tuple[int, int]) -> bool:
        unit, k = alternatives[pick[0]], pick[1]
        return unit.mean_square <= 0 or unit.curve[k - 1] <= unit.mean_square * 10.0 ** (-db / 10)

    ok = [pick for pick in picks if reached(pick)]
    if ok:
        return min(ok, key=lambda pick: (cost_bits(alternatives[pick[0]], pick[1], palette),
                                         pick[0]))
    return min(picks, key=lambda pick: (alternatives[pick[0]].curve[pick[1] - 1]
                                        / alternatives[pick[0]].mean_square, pick[0]))


def choose(units: Sequence[Unit | Sequence[Unit]], *, bits_per_weight: float | None,
           min_sqnr: float | None, palette: bool) -> tuple[list[int], list[int], dict]:
    """k per unit for a budget or for an SQNR floor.

    Parameters
    ----------
    units : sequence of Unit, or of sequences of Unit
        A sequence offers alternative units for one tensor (see `allocate`).
    bits_per_weight : float or None
        The budget (see `allocate`), if `min_sqnr` is None.
    min_sqnr : float or None
        The floor in dB (see `smallest_k_for_sqnr`); with alternatives, the cheapest
        reaching it.
    palette : bool
        Count the palette form's costs.

    Returns
    -------
    (list of int, list of int, dict)
        k per tensor, the alternative chosen per tensor (0 for a single unit), and for the
        report: the target, ``objective`` and ``solver`` (budget) and ``palette_form``.

    Raises
    ------
    ClusteringError
        Without a target, or for a budget below every unit at k = 1 (see `allocate`).
    """
    tensors = [_alternatives(entry) for entry in units]
    if min_sqnr is not None:
        picks = [_floor_choice(alternatives, min_sqnr, palette) for alternatives in tensors]
        return [k for _, k in picks], [alternative for alternative, _ in picks], \
            {"min_sqnr": min_sqnr, "palette_form": palette}
    if bits_per_weight is None:
        raise ClusteringError("choose needs bits_per_weight or min_sqnr; got neither")
    found = allocate(tensors, bits_per_weight, palette=palette)
    return list(found.ks), list(found.variants), {
        "bits_per_weight": bits_per_weight, "objective": found.objective_name,
        "solver": found.solver, "palette_form": palette}
