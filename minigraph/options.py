"""What to cluster and how: the options of a compression run, checked in one place."""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import budget, groups
from .engine import check_options

__all__ = ["Options"]


@dataclass(frozen=True)
class Options:
    """What to cluster and how; the defaults are the 2016 tool's (k = 256, 256 weights minimum)."""

    n_clusters: int = 256
    global_clusters: bool = False
    whitelisted: tuple[str, ...] = ()
    min_n_weights: int = 256
    method: str = "auto"
    init: str = "auto"
    seed: int = 0
    workers: int | None = None
    palettize: bool = False  # the palette form (indices + codebook in the graph)
    group_size: int | None = None  # one codebook per group of this many output channels
    figure_data: bool = False  # fill TensorReport.figure for the tensors a plot shows
    figure_tensors: tuple[str, ...] = ()  # those matching these patterns; else the largest 6
    bits_per_weight: float | None = None  # k per tensor within this average budget
    min_sqnr: float | None = None  # k per tensor: the smallest reaching this SQNR (dB)

    @property
    def per_tensor_k(self) -> bool:
        """True when each tensor gets its own k (a budget or an SQNR floor; k is then a cap)."""
        return self.bits_per_weight is not None or self.min_sqnr is not None

    def validate(self) -> Options:
        """Check every option up front, so a bad one fails before any work is done."""
        check_options(n_clusters=self.n_clusters, method=self.method, init=self.init,
                      seed=self.seed, workers=self.workers, min_n_weights=self.min_n_weights)
        groups.check_group_size(self.group_size, self.global_clusters)
        budget.check_options(self.bits_per_weight, self.min_sqnr, self.global_clusters)
        patterns = tuple(p.strip() for p in self.whitelisted if p and p.strip())
        shown = tuple(p.strip() for p in self.figure_tensors if p and p.strip())
        return replace(self, whitelisted=patterns, figure_tensors=shown)
