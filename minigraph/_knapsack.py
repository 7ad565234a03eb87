"""Multiple-choice knapsack over units' (cost, distortion) choices: exact, or greedy."""

# A tensor (or, with per-group palettes, a tensor whose groups share one k) is a "unit" with
# n weights, a palette entry size and its optimal MSE for every k (engine.error_curve).
# Choosing one k per unit so the total cost fits a budget and the summed distortion is least
# is a multiple-choice knapsack. It is solved exactly by a dynamic program over units that
# keeps only the Pareto frontier of (cost, distortion) of the units seen so far, dropping
# states that even the linear relaxation of the remaining units cannot bring under a feasible
# solution's value (the dominance and LP bounds of Sinha & Zoltners 1979). Where the frontier
# would pass pair_cap pairs in a step (or ten times that in all) the greedy solution is
# returned instead: upgrades in order of distortion saved per bit, which follows the
# Lagrangian relaxation's lower convex hull, then fills what budget is left.

# Each unit's choices ("cands") are (ks, costs, distortions) arrays: costs ascending (int64),
# distortions strictly descending, so every choice is Pareto-efficient.

from __future__ import annotations

import heapq

import numpy as np

__all__ = ["greedy", "exact"]


def greedy(cands: list, budget: int) -> list[int]:
    """A feasible choice per unit, by greedy upgrades.

    Every unit starts at its cheapest choice; then the upgrade saving the most distortion
    per bit among those that still fit is taken, until none fits (a unit's best fitting
    upgrade only worsens as the budget is spent, so a popped entry that no longer fits is
    recomputed).

    Parameters
    ----------
    cands : list of (ks, costs, distortions)
        See the module notes.
    budget : int
        Bits; at least the sum of the cheapest costs.

    Returns
    -------
    list of int
        Index of the chosen entry per unit.
    """
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


def exact(cands: list, budget: int, upper: float, pair_cap: int) -> list[int] | None:
    """The exact optimum, by a DP over units keeping the Pareto frontier of (cost, distortion).

    A state is dropped when nothing fits the budget left, or when even the linear relaxation
    of the units left cannot bring it under ``upper``.

    Parameters
    ----------
    cands : list of (ks, costs, distortions)
        See the module notes.
    budget : int
        Bits.
    upper : float
        The distortion of a feasible choice (for instance `greedy`'s).
    pair_cap : int
        Most (state, choice) pairs in one step; ten times that in all.

    Returns
    -------
    list of int or None
        Index of the chosen entry per unit, or None past the caps.
    """
    m = len(cands)
    segments = _segments(cands)
    rest = [_relaxation(cands[i + 1:], segments[i + 1:]) for i in range(m)]
    slack = 1e-9 * max(abs(upper), 1e-300)
    cost, value = np.zeros(1, np.int64), np.zeros(1)
    steps, work = [], 0
    for i, (_, c, v) in enumerate(cands):
        work += cost.size * c.size
        if cost.size * c.size > pair_cap or work > 10 * pair_cap:
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
