"""The LevelDB-format sorted table that holds a tensor bundle's index (``variables.index``).

Layout (LevelDB's ``doc/table_format.md``, TensorFlow's ``tsl/lib/io/table_builder.cc``,
``block_builder.cc``, ``format.cc``): data blocks, an empty metaindex block, an index block,
then a 48-byte footer. A block is a run of entries ``varint shared, varint unshared,
varint value length, key suffix, value`` whose keys share a prefix with the previous key,
except at restart points, whose offsets (fixed32) and count (fixed32) end the block. Each
block is followed by a 5-byte trailer: a compression byte and the masked CRC32C of the block
and that byte. The index block maps a key ≥ every key of a data block (and < every key of the
next) to that block's handle (varint offset, varint size). The footer holds the metaindex and
index handles, zero padding to 40 bytes, and the magic number.
"""

from __future__ import annotations

import struct
from typing import Sequence, Tuple

from .crc32c import crc32c, mask
from .errors import BundleError

__all__ = ["read_table", "write_table", "BLOCK_SIZE", "RESTART_INTERVAL"]

# TensorFlow's defaults (tsl/lib/io/table_options.h), kept by its BundleWriter, which only
# turns compression off (tensor_bundle.cc): a block is closed once its size reaches 256 KiB,
# and every 16th key is stored whole. The index block stores every key whole.
BLOCK_SIZE = 262144
RESTART_INTERVAL = 16
_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48
_TRAILER = 5
_NO_COMPRESSION, _SNAPPY = 0, 1

Item = Tuple[bytes, bytes]


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(buf: bytes, pos: int, end: int, where: str) -> tuple[int, int]:
    value, shift = 0, 0
    while pos < end and shift < 64:
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise BundleError(f"{where}: truncated or overlong varint at byte {pos}")


class _BlockBuilder:
    """Accumulates one block's entries with prefix-compressed keys and restart points."""

    def __init__(self, restart_interval: int) -> None:
        self.interval = restart_interval
        self.buffer = bytearray()
        self.restarts = [0]
        self.counter = 0
        self.last_key = b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.counter < self.interval:
            limit = min(len(key), len(self.last_key))
            while shared < limit and key[shared] == self.last_key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buffer))
            self.counter = 0
        self.buffer += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
        self.buffer += key[shared:] + value
        self.last_key = key
        self.counter += 1

    def size_estimate(self) -> int:
        return len(self.buffer) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        tail = struct.pack(f"<{len(self.restarts) + 1}I", *self.restarts, len(self.restarts))
        return bytes(self.buffer) + tail


def _separator(start: bytes, limit: bytes) -> bytes:
    """A short key in [start, limit): LevelDB's bytewise FindShortestSeparator."""
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _successor(key: bytes) -> bytes:
    """A short key ≥ key: LevelDB's bytewise FindShortSuccessor."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key


def _handle(offset: int, size: int) -> bytes:
    return _varint(offset) + _varint(size)


def write_table(items: Sequence[Item], *, block_size: int = BLOCK_SIZE,
                restart_interval: int = RESTART_INTERVAL) -> bytes:
    """Serialize sorted ``(key, value)`` pairs as TensorFlow's TableBuilder does, uncompressed.

    Raises
    ------
    BundleError
        If the keys are not strictly increasing.
    """
    out = bytearray()

    def emit(block: _BlockBuilder) -> bytes:
        contents = block.finish() + bytes([_NO_COMPRESSION])
        handle = _handle(len(out), len(contents) - 1)
        out.extend(contents + struct.pack("<I", mask(crc32c(contents))))
        return handle

    index = _BlockBuilder(1)
    data = _BlockBuilder(restart_interval)
    pending: bytes | None = None  # handle of the last closed block, awaiting its index key
    last: bytes | None = None
    for key, value in items:
        if last is not None and key <= last:
            raise BundleError(f"table keys must be strictly increasing: {key!r} after {last!r}")
        if pending is not None and last is not None:
            index.add(_separator(last, key), pending)
            pending = None
        data.add(key, value)
        last = key
        if data.size_estimate() >= block_size:
            pending, data = emit(data), _BlockBuilder(restart_interval)
    if data.buffer:
        pending = emit(data)
    metaindex = emit(_BlockBuilder(restart_interval))
    if pending is not None and last is not None:
        index.add(_successor(last), pending)
    index_handle = emit(index)
    footer = (metaindex + index_handle).ljust(_FOOTER - 8, b"\0")
    out += footer + struct.pack("<Q", _MAGIC)
    return bytes(out)


def _read_block(data: bytes, handle: bytes, where: str, what: str) -> bytes:
    """The contents of the block a handle points to, its trailer checked."""
    offset, pos = _read_varint(handle, 0, len(handle), where)
    size, _ = _read_varint(handle, pos, len(handle), where)
    end = offset + size
    if end + _TRAILER > len(data) - _FOOTER:
        raise BundleError(f"{where}: {what} block at byte {offset} (+{size}) runs past the table")
    kind = data[end]
    stored = struct.unpack_from("<I", data, end + 1)[0]
    if mask(crc32c(data[offset:end + 1])) != stored:
        raise BundleError(f"{where}: checksum mismatch in the {what} block at byte {offset}: "
                          f"the file is corrupt")
    if kind == _SNAPPY:
        raise BundleError(f"{where}: the {what} block at byte {offset} is Snappy-compressed, "
                          f"which TensorFlow's bundle writer never produces; not supported")
    if kind != _NO_COMPRESSION:
        raise BundleError(f"{where}: the {what} block at byte {offset} has unknown "
                          f"compression type {kind}")
    return data[offset:end]


def _parse_block(block: bytes, where: str) -> list[Item]:
    """Every (key, value) of one block, keys rebuilt from their shared prefixes."""
    if len(block) < 4:
        raise BundleError(f"{where}: block of {len(block)} bytes is too short")
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * n_restarts
    if n_restarts < 1 or limit < 0:
        raise BundleError(f"{where}: block claims {n_restarts} restart points, which do not fit")
    restarts = set(struct.unpack_from(f"<{n_restarts}I", block, limit))
    items: list[Item] = []
    key, pos = b"", 0
    while pos < limit:
        at = pos
        shared, pos = _read_varint(block, pos, limit, where)
        unshared, pos = _read_varint(block, pos, limit, where)
        size, pos = _read_varint(block, pos, limit, where)
        if shared > len(key) or (at in restarts and shared) or pos + unshared + size > limit:
            raise BundleError(f"{where}: malformed block entry at byte {at}")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        items.append((key, block[pos:pos + size]))
        pos += size
    return items


def read_table(data: bytes, where: str) -> list[Item]:
    """Every ``(key, value)`` of a table, in key order, with every block checksum verified.

    ``where`` names the file in error messages.

    Raises
    ------
    BundleError
        Not a table (size, magic number), a checksum mismatch, a compressed or malformed block,
        keys out of order.
    """
    if len(data) < _FOOTER:
        raise BundleError(f"{where}: {len(data)} bytes is too short for a table")
    if struct.unpack_from("<Q", data, len(data) - 8)[0] != _MAGIC:
        raise BundleError(f"{where}: bad magic number: not a LevelDB-format table")
    footer = data[len(data) - _FOOTER:]
    _, pos = _read_varint(footer, 0, 40, where)
    _, pos = _read_varint(footer, pos, 40, where)
    metaindex_handle = footer[:pos]
    index_end = pos
    _, index_end = _read_varint(footer, index_end, 40, where)
    _, index_end = _read_varint(footer, index_end, 40, where)
    _read_block(data, metaindex_handle, where, "metaindex")
    index = _parse_block(_read_block(data, footer[pos:index_end], where, "index"), where)
    items: list[Item] = []
    for _, handle in index:
        items += _parse_block(_read_block(data, handle, where, "data"), where)
    for (before, _), (after, _) in zip(items, items[1:], strict=False):
        if after <= before:
            raise BundleError(f"{where}: keys out of order ({after!r} after {before!r})")
    return items
