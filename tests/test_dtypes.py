"""The DataType table: names for numbers, including reference and unknown types."""

from __future__ import annotations

import pytest

from minigraph import DecodeError
from minigraph.dtypes import dtype_name, lookup


@pytest.mark.parametrize("enum, name", [
    # Numbers and names from TensorFlow's tensorflow/core/framework/types.proto.
    (1, "DT_FLOAT"), (19, "DT_HALF"), (20, "DT_RESOURCE"), (101, "DT_FLOAT_REF"),
    (114, "DT_BFLOAT16_REF"), (120, "DT_RESOURCE_REF"), (0, "DT_0"),
])
def test_dtype_names_match_tensorflows(enum, name):
    assert dtype_name(enum) == name


@pytest.mark.parametrize("enum", [100, 150, 201, 100100, 2**31 - 1, -5])
def test_unknown_numbers_get_a_plain_name_without_recursing(enum):
    # Only base + 100 is a reference type; 201 would be a "reference to a reference".
    assert dtype_name(enum) == f"DT_{enum}"


def test_lookup_of_a_huge_number_is_a_clear_decode_error():
    with pytest.raises(DecodeError, match=r"DT_100100 \(100100\)"):
        lookup(100100)
