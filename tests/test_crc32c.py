"""CRC32C against published vectors and a bit-by-bit reference; LevelDB's mask."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minigraph.crc32c import crc32c, mask, unmask


def _bitwise_crc32c(data: bytes) -> int:
    """The definition: reflected polynomial 0x82F63B78, one bit at a time."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_rfc3720_vectors() -> None:
    # RFC 3720 (iSCSI), appendix B.4, and the usual check value of "123456789".
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_kernel_path_on_long_input() -> None:
    # 1000 bytes goes through the numba kernel (8 bytes per step plus a tail).
    data = np.random.default_rng(1).integers(0, 256, 1003, dtype=np.uint8).tobytes()
    assert crc32c(data) == _bitwise_crc32c(data)
    assert crc32c(np.frombuffer(data, np.uint8)) == _bitwise_crc32c(data)


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_matches_definition_and_extends(a: bytes, b: bytes) -> None:
    assert crc32c(a + b) == _bitwise_crc32c(a + b)
    assert crc32c(b, crc32c(a)) == crc32c(a + b)


def test_mask_values() -> None:
    # By hand: rotate 0x00000001 right by 15 -> 0x00020000, plus 0xA282EAD8.
    assert mask(1) == 0xA284EAD8
    assert mask(0) == 0xA282EAD8


@given(st.integers(0, 0xFFFFFFFF))
def test_unmask_inverts_mask(crc: int) -> None:
    assert unmask(mask(crc)) == crc
