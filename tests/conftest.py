"""Shared test settings: fixture paths, a derandomized hypothesis profile, the tensorflow marker."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = ("mlp_digits.pb", "cnn_digits.pb", "encodings.pb", "tf2_functions.pb")

# Derandomized so that CI and every developer see the same examples; more examples on request.
settings.register_profile("default", derandomize=True, deadline=None, max_examples=100,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", derandomize=False, deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

HAVE_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs TensorFlow (pip install tensorflow-cpu); run by hand "
                                   "in a TF virtualenv, see tests/fixtures/README.md")
    for item in items:
        if "tensorflow" in item.keywords and not HAVE_TENSORFLOW:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def expected() -> dict:
    """Facts TensorFlow reported when it made the fixtures (tests/fixtures/expected.json)."""
    return json.loads((FIXTURES / "expected.json").read_text())


def digest_values(values) -> str:
    """The hash the fixture maker took of TensorFlow's decoded values (tests/fixtures/README.md):
    C-order little-endian bytes; bfloat16 as float32; strings as (8-byte length + bytes) each."""
    if isinstance(values, bytes):  # TensorFlow returns a 0-d string as bare bytes
        values = np.array(values, dtype=object)
    if values.dtype == object:
        blob = b"".join(len(v).to_bytes(8, "little") + v for v in values.reshape(-1).tolist())
    else:
        if values.dtype.name == "bfloat16":
            values = values.astype(np.float32)
        blob = np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<")).tobytes()
    return hashlib.sha256(blob).hexdigest()


@pytest.fixture(scope="session")
def expected_savedmodels() -> dict:
    """Facts TensorFlow reported when it made the SavedModel fixtures (savedmodels/expected.json)."""
    return json.loads((FIXTURES / "savedmodels" / "expected.json").read_text())
