"""Synth test fixtures: the packaged SmolLM2 in-process, and a real OpenAI-compatible server on loopback serving it
(the same components as tests/common/llm's fixtures, which pytest does not share across folders)."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from linksyn.common.llm import LLM, load_llm
from linksyn.common.llm.local_server import INSTALL_HINT, LocalOpenAIServer, server_available


@pytest.fixture(scope="session")
def embedded_llm() -> Iterator[LLM]:
    llm = load_llm("embedded")
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def openai_server() -> Iterator[LocalOpenAIServer]:
    if not server_available():
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT, pytrace=False)
        pytest.skip(INSTALL_HINT)
    with LocalOpenAIServer() as server:
        yield server
