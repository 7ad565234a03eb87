"""numba kernel for CRC32C (Castagnoli): table-driven, eight bytes per step; imported lazily."""

from __future__ import annotations

import numba

from .engine._jit import jit  # the one cache policy (read-only installs included)


@jit
def crc32c_update(crc, data, tables):
    """Continue a CRC32C over ``data``: "slicing-by-8" (Kounavis and Berry, Intel, 2005).

    ``crc`` is the running register (uint32, already inverted: start from 0xFFFFFFFF and invert
    the result); ``data`` is a 1-D uint8 array; ``tables`` is the (8, 256) uint32 array from
    ``crc32c._tables``: row j maps a byte to its contribution j bytes further on, so eight
    table lookups consume eight bytes. O(n), one pass, no allocation. Returns the register.
    """
    n = data.size
    i = 0
    c = numba.uint32(crc)
    t0, t1, t2, t3 = tables[0], tables[1], tables[2], tables[3]
    t4, t5, t6, t7 = tables[4], tables[5], tables[6], tables[7]
    while i + 8 <= n:
        lo = c ^ (numba.uint32(data[i]) | (numba.uint32(data[i + 1]) << 8)
                  | (numba.uint32(data[i + 2]) << 16) | (numba.uint32(data[i + 3]) << 24))
        c = (t7[lo & 0xFF] ^ t6[(lo >> 8) & 0xFF] ^ t5[(lo >> 16) & 0xFF] ^ t4[lo >> 24]
             ^ t3[data[i + 4]] ^ t2[data[i + 5]] ^ t1[data[i + 6]] ^ t0[data[i + 7]])
        i += 8
    while i < n:
        c = t0[(c ^ data[i]) & 0xFF] ^ (c >> 8)
        i += 1
    return c
