"""TensorFlow's tensor bundle (the V2 checkpoint format): an index table and raw data shards.

``PREFIX.index`` is a sorted table (see :mod:`minigraph.table`) whose empty key holds a
``BundleHeaderProto`` and whose every other key, a checkpoint key, holds a ``BundleEntryProto``:
dtype, shape, shard id, byte offset and size, and the masked CRC32C of the bytes.
``PREFIX.data-0000i-of-0000N`` are raw shards: a tensor's elements, little-endian, in C order
(string tensors have their own layout, which minigraph never decodes). Facts from TensorFlow's
``tensorflow/core/util/tensor_bundle/tensor_bundle.cc`` and ``tensor_bundle.proto``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import dtypes
from .crc32c import crc32c, mask
from .errors import BundleError, DecodeError
from .schema import BundleEntryProto, BundleHeaderProto
from .table import read_table, write_table

__all__ = ["Bundle", "read_bundle", "write_bundle", "shard_path", "HEADER_KEY"]

PathLike = Union[str, "os.PathLike[str]"]
HEADER_KEY = b""
_BIG_ENDIAN = 1  # BundleHeaderProto.Endianness.BIG
_STRING, _VARIANT = 7, 21


def shard_path(prefix: PathLike, shard: int, n_shards: int) -> Path:
    """``PREFIX.data-0000i-of-0000N``, the name TensorFlow gives data shard ``shard``."""
    return Path(f"{os.fspath(prefix)}.data-{shard:05d}-of-{n_shards:05d}")


@dataclass
class Bundle:
    """A tensor bundle in memory: header, entries in key order, and each shard's bytes.

    ``raw`` keeps every index value as read, so entries that are not changed are written back
    byte for byte; :meth:`set_bytes` replaces a tensor's bytes in place and re-encodes only its
    entry.
    """

    prefix: str
    header: BundleHeaderProto
    entries: dict[str, BundleEntryProto]
    shards: list[bytearray]
    raw: dict[bytes, bytes] = field(default_factory=dict)

    def data(self, key: str) -> memoryview:
        """The stored bytes of one tensor (a view into its shard)."""
        entry = self.entries[key]
        return memoryview(self.shards[entry.shard_id])[entry.offset:entry.offset + entry.size]

    def array(self, key: str) -> np.ndarray:
        """One tensor's elements, flat, as a read-only array of its stored dtype (bfloat16 as
        uint16 bit patterns); only for fixed-size dtypes.

        Raises
        ------
        BundleError
            For a dtype without a fixed item size (strings, variants, resources).
        """
        entry = self.entries[key]
        try:
            info = dtypes.lookup(entry.dtype)
        except DecodeError as exc:
            raise BundleError(f"{self.prefix}.index: key '{key}': {exc}") from None
        if info.storage.kind == "O":
            raise BundleError(f"{self.prefix}.index: key '{key}' is {info.name}, which has no "
                              f"fixed item size")
        return np.frombuffer(self.data(key), dtype=info.storage)

    def set_bytes(self, key: str, payload: bytes | memoryview) -> None:
        """Replace one tensor's bytes with as many new ones and update its checksum."""
        entry = self.entries[key]
        if len(payload) != entry.size:
            raise BundleError(f"{self.prefix}: key '{key}' holds {entry.size} bytes, "
                              f"got {len(payload)} to store")
        self.shards[entry.shard_id][entry.offset:entry.offset + entry.size] = payload
        entry.crc32c = mask(crc32c(payload))
        self.raw.pop(key.encode("utf-8"), None)

    def index_bytes(self) -> bytes:
        """The ``.index`` file's bytes: unchanged entries as read, changed ones re-encoded."""
        items = [(HEADER_KEY, self.raw.get(HEADER_KEY) or self.header.SerializeToString())]
        for key, entry in self.entries.items():
            name = key.encode("utf-8")
            items.append((name, self.raw.get(name) or entry.SerializeToString()))
        return write_table(items)


def _expected_size(entry: BundleEntryProto) -> int | None:
    """Bytes a fixed-size dtype's tensor must occupy, or None for other dtypes."""
    try:
        info = dtypes.lookup(entry.dtype)
    except DecodeError:
        return None
    if info.storage.kind == "O":
        return None
    return _n_elements(entry) * info.itemsize


def _n_elements(entry: BundleEntryProto) -> int:
    n = 1
    for dim in entry.shape.dim:
        n *= dim.size
    return n


def _string_crc(blob: memoryview, n: int, where: str, key: str) -> int:
    """The unmasked CRC TensorFlow records for a string tensor, its length checksum verified.

    Layout (``WriteStringTensor`` in tensor_bundle.cc): n varint64 lengths, the masked CRC32C
    of those lengths (each as 4 little-endian bytes, 8 if it does not fit in 32 bits), then
    the strings. The entry's CRC runs over the lengths so encoded, the 4 checksum bytes and the
    strings.
    """
    lengths, pos, end = bytearray(), 0, len(blob)
    for _ in range(n):
        value, shift = 0, 0
        while True:
            if pos >= end or shift > 63:
                raise BundleError(f"{where}: key '{key}': string lengths are truncated")
            byte = blob[pos]
            value |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if not byte & 0x80:
                break
        lengths += struct.pack("<I" if value <= 0xFFFFFFFF else "<Q", value)
    if pos + 4 > end:
        raise BundleError(f"{where}: key '{key}': the string length checksum is missing")
    crc = crc32c(lengths)
    if mask(crc) != struct.unpack_from("<I", blob, pos)[0]:
        raise BundleError(f"{where}: checksum mismatch in the string lengths of key '{key}': "
                          f"the data file is corrupt")
    return crc32c(blob[pos + 4:], crc32c(blob[pos:pos + 4], crc))


def _check_entry(entry: BundleEntryProto, shards: list[bytearray], where: str, key: str) -> None:
    """Slices, shard id, byte range, size and checksum of one entry."""
    if entry.slices:
        raise BundleError(f"{where}: key '{key}' is saved in {len(entry.slices)} slices "
                          f"(a partitioned variable), which is not supported")
    if not 0 <= entry.shard_id < len(shards):
        raise BundleError(f"{where}: key '{key}' names shard {entry.shard_id}, but the bundle "
                          f"has {len(shards)}")
    shard = shards[entry.shard_id]
    if entry.offset < 0 or entry.size < 0 or entry.offset + entry.size > len(shard):
        raise BundleError(f"{where}: key '{key}' spans bytes {entry.offset}..+{entry.size}, past "
                          f"the end of shard {entry.shard_id} ({len(shard)} bytes)")
    expected = _expected_size(entry)
    if expected is not None and expected != entry.size:
        raise BundleError(f"{where}: key '{key}' holds {entry.size} bytes, but its dtype and "
                          f"shape need {expected}")
    stored = memoryview(shard)[entry.offset:entry.offset + entry.size]
    if entry.dtype == _VARIANT:
        raise BundleError(f"{where}: key '{key}' is a DT_VARIANT tensor, which is not supported")
    if entry.dtype == _STRING:
        crc = _string_crc(stored, _n_elements(entry), where, key)
    else:
        crc = crc32c(stored)
    if mask(crc) != entry.crc32c:
        raise BundleError(f"{where}: checksum mismatch for key '{key}' in shard "
                          f"{entry.shard_id}: the data file is corrupt")


def _parse(message: Any, value: bytes, where: str, key: str) -> Any:
    try:
        return message.FromString(value)
    except Exception:  # protobuf raises DecodeError, or RuntimeError/ValueError in some runtimes
        raise BundleError(f"{where}: the value of key '{key}' is not a {message.__name__}") from None


def _read_into_bytearray(path: Path) -> bytearray:
    """A file's bytes in one writable buffer (one copy, not read_bytes() and then another)."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        data = bytearray(size)
        if file.readinto(data) != size:
            raise OSError(0, "the file changed size while it was read")
    return data


def read_bundle(prefix: PathLike) -> Bundle:
    """Read ``PREFIX.index`` and every data shard, verifying every checksum.

    Raises
    ------
    BundleError
        A missing file, a corrupt table or shard, a big-endian bundle, sliced (partitioned)
        tensors, an entry whose range or size does not fit.
    """
    prefix = os.fspath(prefix)
    where = f"{prefix}.index"
    try:
        items = read_table(Path(where).read_bytes(), where)
    except OSError as exc:
        raise BundleError(f"{where}: cannot read: {exc.strerror}") from None
    if not items or items[0][0] != HEADER_KEY:
        raise BundleError(f"{where}: no bundle header (the table has no empty key)")
    header = _parse(BundleHeaderProto, items[0][1], where, "")
    if header.endianness == _BIG_ENDIAN:
        raise BundleError(f"{where}: the bundle is big-endian, which is not supported")
    if header.num_shards < 1:
        raise BundleError(f"{where}: the header says {header.num_shards} data shards")
    shards = []
    for shard in range(header.num_shards):
        path = shard_path(prefix, shard, header.num_shards)
        try:
            shards.append(_read_into_bytearray(path))
        except OSError as exc:
            raise BundleError(f"{path}: cannot read data shard: {exc.strerror}") from None
    entries = {}
    for name, value in items[1:]:
        try:
            key = name.decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError(f"{where}: key {name!r} is not UTF-8") from None
        entry = _parse(BundleEntryProto, value, where, key)
        _check_entry(entry, shards, where, key)
        entries[key] = entry
    return Bundle(prefix, header, entries, shards, dict(items))


def write_bundle(bundle: Bundle, prefix: PathLike) -> None:
    """Write ``PREFIX.index`` and the data shards (the caller makes the directory atomic)."""
    n = len(bundle.shards)
    for shard, data in enumerate(bundle.shards):
        shard_path(prefix, shard, n).write_bytes(data)
    Path(f"{os.fspath(prefix)}.index").write_bytes(bundle.index_bytes())
