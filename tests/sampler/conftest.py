"""Fixtures of the sampler tests."""

from __future__ import annotations

import pytest
from tests.sampler.sampler_graphs import build_snapshot


@pytest.fixture
def make_snapshot():
    return build_snapshot
