"""Shared test settings: fixture paths, a derandomized hypothesis profile, the tensorflow marker."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

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
