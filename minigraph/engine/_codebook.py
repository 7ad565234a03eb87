"""Codebook application: labels by threshold search, new values and their errors."""

from __future__ import annotations

import math

import numpy as np

from . import _codebook_kernels as kernels
from . import _twins
from ._data import CHUNK
from .api import Errors


def label_dtype(k: int) -> type:
    """Smallest unsigned integer type holding k - 1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if k - 1 <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def padded_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """Thresholds (c,) ascending, padded with +inf to a power-of-two size (at least 1)."""
    size = 1 << int(thresholds.size - 1).bit_length()
    padded = np.full(size, np.inf)
    padded[: thresholds.size] = thresholds
    return padded


def labels_by_search(flat: np.ndarray, padded: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels (n,), OUT and returned: the number of padded thresholds below each value, by
    branch-free binary search on float64 chunks (NaN and +-inf get 0)."""
    if _twins.small(flat.size):
        with np.errstate(invalid="ignore"):  # widening a signalling NaN raises the flag
            wide = flat.astype(np.float64)
        _twins.assign_labels(wide, padded, labels)
        return labels
    buffer = np.empty(min(CHUNK, flat.size))
    for start in range(0, flat.size, CHUNK):
        part = flat[start : start + CHUNK]
        chunk = buffer[: part.size]
        with np.errstate(invalid="ignore"):  # widening a signalling NaN raises the flag
            chunk[:] = part
        kernels.assign_labels(chunk, padded, labels[start : start + part.size])
    return labels


def substitute(values: np.ndarray, labels: np.ndarray,
               codebook: np.ndarray) -> tuple[np.ndarray, Errors]:
    """Replace each finite value by its label's codebook entry and measure it (see api)."""
    with np.errstate(over="ignore"):  # entries beyond the dtype's range: never labelled here
        book = codebook.astype(values.dtype)
    # numba has no float16 arithmetic: such tensors go through float32, which holds them exactly.
    wide = np.float32 if values.dtype == np.float16 else values.dtype
    source = values.astype(wide, copy=False)
    new = np.empty(values.shape, wide)
    used = np.zeros(book.size, np.uint8)
    apply = _twins.apply_codebook if _twins.small(values.size) else kernels.apply_codebook
    sse, signal, worst, count = apply(source, labels, book.astype(wide), new, used)
    new = new.astype(values.dtype, copy=False)
    # Logarithms taken apart: the ratio of a subnormal signal to a large error underflows to 0.
    sqnr = 10.0 * (math.log10(signal) - math.log10(sse)) if sse > 0 and signal > 0 else None
    distinct = int(np.unique(book[used.astype(bool)]).size)
    return new, Errors(sse / count if count else 0.0, worst, sqnr, distinct)
