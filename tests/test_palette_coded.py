"""The palette built from the clustering's own labels (packing.Coded) against the palette found
by searching the written values, and the whole file pipeline that uses it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigraph import codec, dtypes
from minigraph.codebook import round_codebook
from minigraph.compress import Options
from minigraph.engine import cluster, substitute
from minigraph.files import compress_file, expand_file
from minigraph.packing import Coded, coded_from_clusters, palette_of, to_patterns

from conftest import FIXTURES, MODELS

FLOATS = {dtypes.DT_HALF: np.float16, dtypes.DT_BFLOAT16: np.float32,
          dtypes.DT_FLOAT: np.float32, dtypes.DT_DOUBLE: np.float64}


def test_unused_entries_are_dropped_and_equal_entries_merged_by_hand():
    # Entries 0 and 1 are both 1.0 and entry 3 is used by no label: the palette is [1.0, 3.0]
    # (sorted by bit pattern: 0x3F800000 < 0x40400000) and the labels point into it.
    book = np.array([1.0, 1.0, 3.0, 7.0], dtype=np.float32)
    coded = coded_from_clusters(np.array([2, 1, 0, 2], dtype=np.uint8), book, dtypes.DT_FLOAT)
    assert coded.palette.tolist() == [0x3F800000, 0x40400000]
    assert coded.labels.tolist() == [1, 0, 0, 1] and coded.labels.dtype == np.uint8
    assert coded.values().tolist() == [3.0, 1.0, 1.0, 3.0]
    assert coded.nbytes == 2 * 4 + 4


def test_a_fully_used_codebook_is_the_palette_in_its_own_order_by_hand():
    # -1.0, 0.5 and 2.0 are 0xBF800000, 0x3F000000 and 0x40000000: kept in the codebook's
    # (ascending value) order, not sorted by pattern, and the labels are the clustering's own.
    book = np.array([-1.0, 0.5, 2.0], dtype=np.float32)
    labels = np.array([2, 0, 1, 1], dtype=np.uint8)
    coded = coded_from_clusters(labels, book, dtypes.DT_FLOAT, distinct=3)
    assert coded.palette.tolist() == [0xBF800000, 0x3F000000, 0x40000000]
    assert coded.labels is labels
    assert coded.values().tolist() == [2.0, -1.0, 0.5, 0.5]


def test_negative_zero_keeps_its_own_pattern():
    book = np.array([-0.0, 0.0], dtype=np.float32)
    coded = coded_from_clusters(np.array([0, 1, 0], dtype=np.uint8), book, dtypes.DT_FLOAT)
    assert coded.palette.tolist() == [0x00000000, 0x80000000]
    assert coded.values().view(np.uint32).tolist() == [0x80000000, 0, 0x80000000]


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from(sorted(FLOATS)), k=st.integers(1, 300),
       n=st.integers(1, 3000), seed=st.integers(0, 2**32 - 1), spread=st.floats(1e-6, 1e4))
def test_coded_holds_exactly_the_substituted_values(dtype, k, n, seed, spread):
    rng = np.random.default_rng(seed)
    raw = rng.laplace(0, spread, n) * rng.integers(0, 2, n)  # many exact zeros too
    values = codec.round_to_dtype(raw, dtype).astype(FLOATS[dtype])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    result = cluster(values, k)
    book = round_codebook(result.centroids, [dtype])
    new, errors = substitute(values, result.labels.reshape(-1), book)
    for distinct in (None, errors.distinct):
        coded = coded_from_clusters(result.labels.reshape(-1), book.astype(new.dtype), dtype,
                                    distinct)
        assert isinstance(coded, Coded)
        got = coded.values()
        assert got.dtype == new.dtype and np.array_equal(got.view(f"u{got.itemsize}"),
                                                         new.view(f"u{new.itemsize}"))
        # The same distinct patterns palette_of finds in the values, each once.
        palette, _ = palette_of(to_patterns(new, dtype), 1 << 16)
        assert np.array_equal(np.sort(coded.palette), palette)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("k", [256, 5])
def test_palettized_file_expands_to_the_values_form_byte_for_byte(model, k, tmp_path):
    source = FIXTURES / model
    values_form, palette_form = tmp_path / "values.pb", tmp_path / "palette.pb"
    compress_file(source, values_form, options=Options(n_clusters=k, min_n_weights=16))
    report = compress_file(source, palette_form,
                           options=Options(n_clusters=k, min_n_weights=16, palettize=True))
    assert report["totals"]["palettized"] > 0
    expand_file(palette_form, tmp_path / "expanded.pb")
    assert (tmp_path / "expanded.pb").read_bytes() == values_form.read_bytes()
