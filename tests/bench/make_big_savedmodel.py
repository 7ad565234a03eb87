"""Write a SavedModel with ~100 MB of float32 variables (dense 1024→4096→4096→1024) with TensorFlow.

Benchmark input for ``bench_savedmodel.py``; needs TensorFlow, so run it in a TF virtualenv:

    /work/tfvenv/bin/python tests/bench/make_big_savedmodel.py [OUT] [--scale 1]

OUT defaults to ``tests/bench/big_savedmodel`` (ignored by git). ``--scale S`` divides every
width by S. Weights imitate trained ones as ``make_big_graph.py`` does: per element, 90%
Laplace(0, 0.01) and 10% Normal(0, 0.1); biases Normal(0, 0.01).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "big_savedmodel"
WIDTHS = (1024, 4096, 4096, 1024)


def _weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    peak = rng.laplace(0.0, 0.01, size=shape)
    tails = rng.normal(0.0, 0.1, size=shape)
    return np.where(rng.random(size=shape) < 0.9, peak, tails).astype(np.float32)


class Dense(tf.Module):
    """A ReLU MLP whose variables hold the weights; serving signature ``x -> y``."""

    def __init__(self, widths: tuple[int, ...], seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.kernels = [tf.Variable(_weights(rng, (a, b)), name=f"kernel{i}")
                        for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False))]
        self.biases = [tf.Variable(rng.normal(0, 0.01, b).astype(np.float32), name=f"bias{i}")
                       for i, b in enumerate(widths[1:])]
        self.__call__ = tf.function(self._call, input_signature=[
            tf.TensorSpec([None, widths[0]], tf.float32, name="x")])

    def _call(self, x):
        for kernel, bias in zip(self.kernels, self.biases, strict=False):
            x = tf.nn.relu(tf.matmul(x, kernel) + bias)
        return {"y": x}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    module = Dense(tuple(w // args.scale for w in WIDTHS), args.seed)
    if args.out.exists():
        shutil.rmtree(args.out)
    tf.saved_model.save(module, str(args.out), signatures={"serving_default": module.__call__})
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {args.out}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
