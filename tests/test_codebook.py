"""A codebook shared by several float dtypes: common values, and entries each dtype holds."""

from __future__ import annotations

import numpy as np

from minigraph.codebook import fit_labels, round_codebook, usable_entries
from minigraph.codec import round_to_dtype

HALF, FLOAT, DOUBLE, BFLOAT16 = 19, 1, 2, 14


def test_round_to_dtype_matches_hand_rounding_and_overflows_to_inf():
    # Half: largest finite 65504, ulp 32 there; 65519 rounds down, 65520 (a tie) overflows.
    assert round_to_dtype([65519.0, 65520.0, 0.1], HALF).tolist() == [65504.0, np.inf,
                                                                      0.0999755859375]
    # bfloat16 keeps 8 significant bits: 1 + 2**-8 is a tie and goes to even (1.0).
    assert round_to_dtype([1 + 2**-8, 1 + 3 * 2**-8], BFLOAT16).tolist() == [1.0, 1 + 2**-7 * 2]


def test_a_rounded_codebook_holds_the_same_values_in_every_dtype():
    book = round_codebook(np.array([-1e5, 0.1, 1 / 3, 7e4]), [HALF, FLOAT, BFLOAT16])
    for enum in (HALF, FLOAT, BFLOAT16):
        rounded = round_to_dtype(book, enum)
        finite = np.isfinite(rounded)
        assert (rounded[finite] == book[finite]).all()
    assert usable_entries(book, HALF) == (1, 2)  # -1e5 and 7e4 are beyond half
    assert usable_entries(book, FLOAT) == (0, 3)


def test_labels_move_to_the_nearest_entry_the_dtype_holds():
    book = round_codebook(np.array([-1e5, 0.5, 2.0, 7e4]), [HALF, FLOAT])
    labels = np.array([0, 1, 2, 3, 3], dtype=np.uint8)
    assert fit_labels(labels, book, HALF).tolist() == [1, 1, 2, 2, 2]
    assert fit_labels(labels, book, FLOAT) is labels
    assert fit_labels(labels, np.array([1e6, 2e6]), HALF) is None
