"""CRC32C (Castagnoli), the checksum of TensorFlow's tensor bundles, and LevelDB's masking of it."""

from __future__ import annotations

from typing import Union

import numpy as np

__all__ = ["crc32c", "mask", "unmask"]

Buffer = Union[bytes, bytearray, memoryview, np.ndarray]

# The Castagnoli polynomial 0x1EDC6F41, bit-reversed (CRCs here are computed LSB first).
_POLY = 0x82F63B78
# LevelDB's mask (tsl/lib/hash/crc32c.h): a CRC stored next to the data it covers is rotated and
# offset, so that a CRC of bytes that themselves hold CRCs does not degenerate.
_MASK_DELTA = 0xA282EAD8
_TABLES: np.ndarray | None = None
_SMALL = 64  # below this many bytes the table loop in Python beats a kernel call's overhead


def _tables() -> np.ndarray:
    """The (8, 256) uint32 slicing tables: row 0 is the byte-at-a-time table, row j the
    contribution of a byte followed by j zero bytes."""
    global _TABLES
    if _TABLES is None:
        table = np.arange(256, dtype=np.uint32)
        for _ in range(8):
            table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1).astype(np.uint32)
        tables = np.empty((8, 256), dtype=np.uint32)
        tables[0] = table
        for j in range(1, 8):
            prev = tables[j - 1]
            tables[j] = table[prev & 0xFF] ^ (prev >> 8)
        _TABLES = tables
    return _TABLES


def crc32c(data: Buffer, crc: int = 0) -> int:
    """CRC32C of ``data``, continuing from the CRC ``crc`` of the bytes before it.

    Parameters
    ----------
    data : bytes-like or ndarray
        Any contiguous buffer; arrays are read as their raw bytes.
    crc : int
        The CRC32C of the preceding bytes (0 to start), so ``crc32c(b, crc32c(a)) == crc32c(a + b)``.

    Returns
    -------
    int
        The unsigned 32-bit CRC (not masked).
    """
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    view = np.frombuffer(data, dtype=np.uint8)
    register = (crc ^ 0xFFFFFFFF) & 0xFFFFFFFF
    tables = _tables()
    if view.size < _SMALL:
        table = tables[0]
        for byte in view.tolist():
            register = int(table[(register ^ byte) & 0xFF]) ^ (register >> 8)
    else:
        from minigraph import _crc32c_kernel  # numba loads here, not at import

        register = int(_crc32c_kernel.crc32c_update(register, view, tables))
    return register ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    """The masked form LevelDB and TensorFlow store: rotate right by 15 bits, add a constant."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    """Inverse of :func:`mask`."""
    rotated = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF
