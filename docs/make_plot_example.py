"""Render docs/plot-example.png, the README's picture: the sample CNN clustered to k = 16.

    python docs/make_plot_example.py

Needs the plot extra (matplotlib, and Pillow, which matplotlib installs). The figure is drawn
as ``minigraph plot tests/fixtures/cnn_digits.pb -k 16 -o docs/plot-example.png`` would draw
it, then stored with a 256-colour palette to keep the repository small.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from minigraph.plotfile import plot_file  # noqa: E402

OUT = REPO / "docs" / "plot-example.png"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.png"
        plot_file(REPO / "tests" / "fixtures" / "cnn_digits.pb", full, k=16)
        with Image.open(full) as image:
            small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                  dither=Image.Dither.NONE)
            small.save(OUT, optimize=True)
    print(f"wrote {OUT}: {OUT.stat().st_size} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
