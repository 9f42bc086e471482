"""The llamacpp backend: request translation, and the real packaged SmolLM2 through llama-cpp-python."""

from __future__ import annotations

import importlib.util
import json

import jsonschema
import pytest

from linksyn.common.llm import load_llm
from linksyn.common.llm.base import ChatRequest, SamplingParams
from linksyn.common.llm.llamacpp import chat_kwargs

from tests.common.llm.llm_workload import KP_SCHEMA, kp_request  # beside this file

needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python is not installed")


def test_chat_kwargs():
    r = ChatRequest(messages=({"role": "user", "content": "q"},),
                    params=SamplingParams(temperature=0.5, top_p=0.8, max_tokens=9, seed=2, stop=("x",)),
                    json_schema=KP_SCHEMA)
    assert chat_kwargs(r) == {"messages": [{"role": "user", "content": "q"}], "temperature": 0.5, "top_p": 0.8,
                              "max_tokens": 9, "seed": 2, "stop": ["x"],
                              "response_format": {"type": "json_object", "schema": KP_SCHEMA}}


@needs_llama_cpp
def test_real_model_text_tokens_and_schema():
    llm = load_llm("llamacpp:embedded")
    out = llm.generate([
        ChatRequest(messages=({"role": "user", "content": "What is 2+2?"},), params=SamplingParams(max_tokens=8)),
        kp_request("What is 2+2?"),
    ])
    assert out[0].ok and out[0].text.strip() and out[0].prompt_tokens > 5 and 1 <= out[0].completion_tokens <= 8
    assert out[1].ok and out[1].finish_reason == "stop"
    jsonschema.validate(json.loads(out[1].text, strict=False), KP_SCHEMA)  # see test_local_server on strict=False
    assert llm.usage.requests == 2 and llm.model_name == "llamacpp:SmolLM2-135M-Instruct"
