"""Fixtures of the graph tests (the data itself is in graph_fixtures.py)."""

from __future__ import annotations

import pytest
from tests.graph.graph_fixtures import HAND_SEEDS, annotated

from linksyn.v1 import records_pb2


@pytest.fixture
def hand_seeds() -> list[records_pb2.AnnotatedSeed]:
    return [annotated(*s) for s in HAND_SEEDS]
