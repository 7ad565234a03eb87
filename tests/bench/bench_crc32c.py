"""Benchmark minigraph's CRC32C kernel (throughput in GB/s) against zlib's CRC-32 for scale.

    python tests/bench/bench_crc32c.py [--mb 256] [--repeat 5]

The first call loads (or compiles) the numba kernel and is reported separately; the best of
``--repeat`` timed runs over the same buffer is the throughput. zlib.crc32 computes a different
polynomial (CRC-32, not CRC32C); it is shown only as a familiar speed reference.
"""
from __future__ import annotations

import argparse
import sys
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from minigraph.crc32c import crc32c  # noqa: E402


def _best(func, data, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func(data)
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    data = np.random.default_rng(0).integers(0, 256, args.mb << 20, dtype=np.uint8).tobytes()
    started = time.perf_counter()
    crc32c(data[:4096])
    print(f"first call (kernel load or compile): {time.perf_counter() - started:.3f} s")
    for name, func in (("minigraph crc32c", crc32c), ("zlib crc32 (reference)", zlib.crc32)):
        seconds = _best(func, data, args.repeat)
        print(f"{name:24s} {len(data) / seconds / 1e9:6.2f} GB/s  ({args.mb} MiB in {seconds:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
