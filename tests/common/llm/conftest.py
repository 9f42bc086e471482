"""LLM fixtures: the packaged SmolLM2 in-process, and a real OpenAI-compatible server on loopback serving it.

- `embedded_llm` (session): `load_llm("embedded")`, the CPU default engine on the packaged GGUF.
- `hf_llm` (session): `load_llm("hf:embedded")`, transformers in-process (shares weights with embedded_llm when
  that is hf).
- `openai_server` (session): llama-cpp-python's server on a free loopback port serving the packaged GGUF; yields
  the LocalOpenAIServer (`.base_url`, `.model_name`, `.spec`). Skipped when llama-cpp-python is not installed,
  except under CI (CI=true), where its absence is a failure.
"""

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
def hf_llm() -> Iterator[LLM]:
    llm = load_llm("hf:embedded", device="cpu")
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
