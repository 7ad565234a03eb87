"""Palette indices: distinct bit patterns of a tensor, and b-bit indices packed into int64 words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import codec, dtypes
from .dtypes import DTypeInfo

__all__ = ["WORD_BITS", "MAX_BITS", "bits_for", "per_word", "pack_indices", "unpack_indices",
           "to_patterns", "from_patterns", "palette_supported", "palette_of", "label_dtype",
           "group_palettes", "Coded", "coded_from_clusters", "as_values"]

WORD_BITS = 64
MAX_BITS = 16  # 65,536 entries: every float16/bfloat16 pattern; beyond that a palette rarely pays
_BF16 = dtypes.DT_BFLOAT16
_CHUNK = 1 << 20  # elements searched and packed at a time, to bound the temporaries
_WINDOW = 16  # bits of a pattern looked up in one table


def bits_for(k: int) -> int:
    """Bits per index for a palette of ``k`` entries: ceil(log2 k), at least 1."""
    return max(1, (int(k) - 1).bit_length())


def per_word(bits: int) -> int:
    """How many ``bits``-wide indices one 64-bit word holds at most."""
    return WORD_BITS // bits


def pack_indices(labels: np.ndarray, bits: int, p: int | None = None) -> np.ndarray:
    """Pack indices ``bits`` wide into int64 words, index i at bits ``(i % p) * bits`` of word ``i // p``.

    Parameters
    ----------
    labels : ndarray of shape (n,), integer
        Each in [0, 2**bits).
    bits : int
        1 to 32.
    p : int, optional
        Indices per word, at most (and by default) ``64 // bits``.

    Returns
    -------
    ndarray of shape (ceil(n / p),), int64
        Unused high bits and the fields past ``n`` are zero. A word whose top bit is set is
        negative: the decoder masks after an arithmetic right shift, so it does not matter.
    """
    p = p or per_word(bits)
    n = labels.size
    words = np.zeros(-(-n // p), dtype=np.uint64)
    shifts = np.arange(p, dtype=np.uint64) * np.uint64(bits)
    step = max(1, _CHUNK // p) * p  # whole words at a time, about _CHUNK indices
    for start in range(0, n, step):
        part = np.asarray(labels[start:start + step], dtype=np.uint64)
        rows = -(-part.size // p)
        flat = np.zeros(rows * p, dtype=np.uint64)
        flat[:part.size] = part
        grid = flat.reshape(rows, p)
        grid <<= shifts
        np.bitwise_or.reduce(grid, axis=1, out=words[start // p:start // p + rows])
    return words.view(np.int64)


def unpack_indices(words: np.ndarray, bits: int, n: int, p: int | None = None) -> np.ndarray:
    """The first ``n`` indices packed by :func:`pack_indices` (ndarray of shape (n,), int64)."""
    p = p or per_word(bits)
    shifts = np.arange(p, dtype=np.uint64) * np.uint64(bits)
    fields = (np.asarray(words, dtype=np.int64).view(np.uint64)[:, None] >> shifts)
    fields &= np.uint64((1 << bits) - 1)
    return fields.reshape(-1)[:n].astype(np.int64)


def _unsigned(info: DTypeInfo) -> np.dtype:
    return np.dtype(f"<u{2 if info.enum == _BF16 else info.itemsize}")


def to_patterns(values: np.ndarray, dtype: int) -> np.ndarray:
    """The bit patterns of decoded values (``codec.to_array`` output) as unsigned integers.

    bfloat16 arrives widened to float32 by a 16-bit shift, so its patterns are the high halves.
    """
    flat = np.ascontiguousarray(values).reshape(-1)
    if dtype == _BF16:
        return (flat.view(np.uint32) >> 16).astype(np.uint16)
    return flat.view(_unsigned(dtypes.lookup(dtype)))


def from_patterns(patterns: np.ndarray, dtype: int) -> np.ndarray:
    """Values with the given bit patterns, in the array dtype ``codec`` reads and writes."""
    patterns = np.ascontiguousarray(patterns)
    if dtype == _BF16:
        return codec.bfloat16_to_float32(patterns)
    return patterns.view(dtypes.lookup(dtype).storage)


def palette_supported(dtype: int) -> bool:
    """Whether tensors of this DataType can be palettized (fixed-size elements of ≤ 8 bytes)."""
    info = dtypes.BY_ENUM.get(dtype)
    return info is not None and info.storage.kind != "O" and info.itemsize <= 8


def palette_of(patterns: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Sorted distinct patterns and each element's index into them.

    A strided sample finds the common patterns; one search over the whole array places every
    element, and only those not found are added (a second search then runs). The values form has
    few distinct values, so this avoids sorting the whole tensor as ``np.unique`` would.

    Returns
    -------
    (ndarray of shape (k,), ndarray of shape (n,) of ``label_dtype(k)``, or None)
        Labels are None when there are more than ``limit`` distinct patterns.
    """
    n = patterns.size
    palette = np.unique(patterns[::max(1, n // 65536)])
    labels = _search(palette, patterns)
    missing = palette[labels] != patterns
    if missing.any():
        palette = np.union1d(palette, patterns[missing])
        if palette.size > limit:
            return palette, None
        labels = _search(palette, patterns)
    return palette, (None if palette.size > limit else labels)


@dataclass(frozen=True)
class Coded:
    """A tensor's new values kept as their palette: what the palette form stores, in a fifth of
    the memory of the values (float32, uint8 labels) and with nothing left to search.

    ``palette`` holds distinct bit patterns (``to_patterns``), ``labels`` each element's index
    into it; the values are ``from_patterns(palette)[labels]``. Unlike ``palette_of``'s, the
    palette need not be sorted: it keeps the codebook's order (ascending values) when it can.
    """

    palette: np.ndarray
    labels: np.ndarray
    dtype: int

    @property
    def nbytes(self) -> int:
        return int(self.palette.nbytes + self.labels.nbytes)

    def values(self) -> np.ndarray:
        """The values, flat, in the array dtype ``codec`` reads and writes."""
        return from_patterns(self.palette, self.dtype)[self.labels]


def coded_from_clusters(labels: np.ndarray, book: np.ndarray, dtype: int,
                        distinct: int | None = None) -> Coded:
    """The palette of values written as ``book[labels]`` (every value finite and clustered).

    ``book`` holds the entries as the tensor's array dtype holds them (``codec.to_array``), so
    the values ``engine.substitute`` writes have exactly these bit patterns. When its
    ``Errors.distinct`` (``distinct``) says every entry is used and no two patterns are equal,
    the book is the palette and the labels are kept as they are: no pass over the tensor.
    Otherwise unused entries are left out and equal patterns merged, as ``palette_of`` of the
    values would find them (then the palette is sorted by pattern).
    """
    patterns = to_patterns(book, dtype)
    if distinct == book.size and np.unique(patterns).size == book.size:
        return Coded(patterns.copy(), labels, dtype)
    used = np.flatnonzero(np.bincount(labels, minlength=book.size))
    palette, inverse = np.unique(patterns[used], return_inverse=True)
    mapping = np.zeros(book.size, dtype=label_dtype(palette.size))
    mapping[used] = inverse.reshape(-1)
    return Coded(palette, mapping.take(labels), dtype)


def as_values(new: "np.ndarray | Coded") -> np.ndarray:
    """New values as an array, whichever way they are kept."""
    return new.values() if isinstance(new, Coded) else new


def label_dtype(k: int) -> np.dtype:
    """The smallest unsigned dtype holding indices into ``k`` entries (labels of a large
    tensor are kept until it is written)."""
    return np.dtype(np.uint8 if k <= 1 << 8 else np.uint16 if k <= 1 << 16 else np.uint32)


def _window(palette: np.ndarray) -> int | None:
    """A shift s such that bits s to s+15 of the patterns tell every palette entry apart."""
    width = palette.dtype.itemsize * 8
    if width <= _WINDOW:
        return 0
    for shift in range(width - _WINDOW, -1, -1):
        keys = (palette >> palette.dtype.type(shift)) & palette.dtype.type(0xFFFF)
        if np.unique(keys).size == palette.size:
            return shift
    return None


def _search(palette: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """For each pattern, the index of its palette entry (of some entry, if it has none).

    When 16 bits of the patterns tell the palette entries apart, a 65,536-entry table looks each
    element up in one pass; otherwise a binary search does.
    """
    labels = np.empty(patterns.size, dtype=label_dtype(palette.size))
    shift = _window(palette) if 0 < palette.size <= 1 << _WINDOW else None
    if shift is None:
        for start in range(0, patterns.size, _CHUNK):
            part = np.searchsorted(palette, patterns[start:start + _CHUNK])
            np.minimum(part, max(palette.size - 1, 0), out=part)
            labels[start:start + _CHUNK] = part
        return labels
    kind = palette.dtype.type
    mask = kind(min(0xFFFF, np.iinfo(palette.dtype).max))
    table = np.zeros(int(mask) + 1, dtype=labels.dtype)
    table[(palette >> kind(shift)) & mask] = np.arange(palette.size)
    for start in range(0, patterns.size, _CHUNK):
        labels[start:start + _CHUNK] = table[(patterns[start:start + _CHUNK] >> kind(shift)) & mask]
    return labels


def group_palettes(patterns: np.ndarray, channels: int, group: int,
                   limit: int) -> tuple[np.ndarray, np.ndarray | None]:
    """One palette per group of ``group`` consecutive channels of the last axis.

    Parameters
    ----------
    patterns : ndarray of shape (n,), unsigned
        Bit patterns in element order; n is a multiple of ``channels``.
    channels, group : int
        Size of the last axis, and channels per group (the last group may have fewer).
    limit : int
        Most entries a group's palette may have.

    Returns
    -------
    (ndarray of shape (groups, k), ndarray of shape (n,) of ``label_dtype(k)``, or None)
        Row g holds group g's sorted distinct patterns, shorter rows padded by repeating their
        last entry up to the largest row's length k; each label indexes its group's row.
        Labels are None when a group has more than ``limit`` distinct patterns.
    """
    grid = patterns.reshape(-1, channels)
    rows, labels = [], []
    for start in range(0, channels, group):
        part = np.ascontiguousarray(grid[:, start:start + group]).reshape(-1)
        palette, part_labels = palette_of(part, limit)
        if part_labels is None:
            return palette, None
        rows.append(palette)
        labels.append(part_labels)
    k = max(row.size for row in rows)
    table = np.stack([np.pad(row, (0, k - row.size), mode="edge") for row in rows])
    out = np.empty(grid.shape, dtype=label_dtype(k))
    for number, part_labels in enumerate(labels):
        start = number * group
        out[:, start:start + group] = part_labels.reshape(grid.shape[0], -1)
    return table, out.reshape(-1)
