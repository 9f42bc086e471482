"""Fixtures for sink tests: messages, and sink configs on a temporary folder."""

from __future__ import annotations

from typing import Callable

import pytest
from linksyn.sink.config import EvalSetConfig, SinkConfig

from tests.sink.sink_fixtures import FIXTURES, MessageFactory


@pytest.fixture
def messages() -> MessageFactory:
    return MessageFactory()


@pytest.fixture
def sink_cfg(tmp_path) -> Callable[..., SinkConfig]:
    def make(**kw) -> SinkConfig:
        return SinkConfig(**({"output_dir": str(tmp_path / "dataset"), "shard_records": 1000,
                              "flush_interval_s": 3600.0} | kw))

    return make


@pytest.fixture
def mmlu_eval() -> EvalSetConfig:
    return EvalSetConfig(kind="mmlu", path=str(FIXTURES / "mmlu_test"))
