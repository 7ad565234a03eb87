"""One codebook for tensors of several float dtypes: entries every dtype holds exactly, and
for each dtype the entries it can hold at all."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from . import codec

__all__ = ["round_codebook", "usable_entries", "fit_labels"]


def round_codebook(centroids: np.ndarray, dtype_enums: Iterable[int]) -> np.ndarray:
    """Centroids rounded through every given dtype, so each dtype holds exactly these values.

    With one dtype this is plain rounding; for a global codebook over mixed dtypes it makes the
    same k values representable in all of them, so the whole graph holds at most k values and a
    second run finds nothing to change. An entry beyond a dtype's range stays as it is: that
    dtype's tensors never use it (see :func:`usable_entries`). Rounding through half and
    bfloat16 in turn can move a tiny value twice, so it repeats until nothing moves.

    Parameters
    ----------
    centroids : ndarray of shape (k,), float64, ascending
    dtype_enums : iterable of int
        Float DataType numbers.

    Returns
    -------
    ndarray of shape (k,), float64, ascending (ties possible)
    """
    book = np.asarray(centroids, dtype=np.float64)
    enums = sorted(set(dtype_enums))
    for _ in range(4):
        before = book
        for enum in enums:
            narrow = codec.round_to_dtype(book, enum)
            book = np.where(np.isfinite(narrow), narrow, book)
        if np.array_equal(book, before):
            break
    return book


def usable_entries(book: np.ndarray, enum: int) -> tuple[int, int]:
    """The entries of an ascending codebook that a float dtype holds as finite values.

    Rounding is monotone and only the ends overflow, so they form one index range.

    Returns
    -------
    (lo, hi) : tuple of int
        Entries ``lo`` to ``hi`` inclusive; ``lo > hi`` when the dtype holds none.
    """
    finite = np.flatnonzero(np.isfinite(codec.round_to_dtype(book, enum)))
    return (int(finite[0]), int(finite[-1])) if finite.size else (1, 0)


def fit_labels(labels: np.ndarray, book: np.ndarray, enum: int) -> np.ndarray | None:
    """Labels of one tensor's values, moved to entries its dtype holds as finite values.

    A value labelled with an entry beyond its dtype's range (a codebook shared with wider
    dtypes) takes the nearest entry the dtype holds: clusters are intervals of the sorted
    values, so that is the first or last such entry.

    Parameters
    ----------
    labels : ndarray of shape (n,), unsigned ints
    book : ndarray of shape (k,), float64, from :func:`round_codebook`
    enum : int
        The tensor's float DataType.

    Returns
    -------
    ndarray of shape (n,), labels' dtype, or None when the dtype holds no entry at all
    """
    lo, hi = usable_entries(book, enum)
    if lo > hi:
        return None
    if lo == 0 and hi == book.size - 1:
        return labels
    return np.clip(labels, lo, hi).astype(labels.dtype, copy=False)
