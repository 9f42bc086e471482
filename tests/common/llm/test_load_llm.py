"""load_llm: spec dispatch, option validation, clear errors."""

from __future__ import annotations

import pydantic
import pytest
from linksyn.common.llm import LLMConfig, ModelSpecError, load_llm
from linksyn.common.llm.openai import OpenAILLM


def test_unknown_scheme_names_the_spec():
    with pytest.raises(ModelSpecError, match=r"unknown model spec 'gpt:4'.*'hf:\.\.\.'"):
        load_llm("gpt:4")


def test_missing_model_names_the_spec_and_the_path():
    with pytest.raises(ModelSpecError, match=r"'hf:/no/such/model.gguf'.*'/no/such/model.gguf' does not exist"):
        load_llm("hf:/no/such/model.gguf")


def test_hub_id_not_in_cache_is_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(ModelSpecError, match=r"'hf:linksyn-test/no-such-model'.*allow_download"):
        load_llm("hf:linksyn-test/no-such-model", device="cpu")


def test_options_override_config_and_unknown_options_fail():
    llm = load_llm("openai:http://127.0.0.1:9/v1#m", LLMConfig(retry={"max_attempts": 2}), max_concurrency=3)
    try:
        assert isinstance(llm, OpenAILLM)
        assert (llm.config.retry.max_attempts, llm.config.max_concurrency) == (2, 3)
        assert llm.model_name == "openai:m" and llm.base_url == "http://127.0.0.1:9/v1"
    finally:
        llm.close()
    with pytest.raises(pydantic.ValidationError, match="max_concurency"):
        load_llm("openai:http://127.0.0.1:9/v1#m", max_concurency=3)
