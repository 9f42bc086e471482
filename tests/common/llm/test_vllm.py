"""The vllm backend without vLLM (not installable here): the request translation and the import error."""

from __future__ import annotations

import importlib.util
import sys
from types import SimpleNamespace

import pytest

from linksyn.common.llm import load_llm
from linksyn.common.llm.base import SamplingParams
from linksyn.common.llm.vllm import completion_from_output, structured_output_kwargs

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}}


def test_sampling_params_translate_every_field_for_vllm_and_openai():
    p = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=300, seed=7, stop=("###", "\n\n"))
    assert p.as_kwargs() == {"temperature": 0.6, "top_p": 0.95, "max_tokens": 300, "seed": 7, "stop": ["###", "\n\n"]}
    assert SamplingParams().as_kwargs() == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 256}


class _Params:
    def __init__(self, **kw):
        self.kw = kw


def test_structured_outputs_use_the_current_api_when_present():
    module = SimpleNamespace(StructuredOutputsParams=_Params, GuidedDecodingParams=_Params)
    kw = structured_output_kwargs(SCHEMA, module)
    assert list(kw) == ["structured_outputs"] and kw["structured_outputs"].kw == {"json": SCHEMA}
    assert structured_output_kwargs(None, module) == {}


def test_structured_outputs_fall_back_to_guided_decoding_on_old_vllm():
    kw = structured_output_kwargs(SCHEMA, SimpleNamespace(GuidedDecodingParams=_Params))
    assert list(kw) == ["guided_decoding"] and kw["guided_decoding"].kw == {"json": SCHEMA}
    with pytest.raises(ImportError, match="upgrade vllm"):
        structured_output_kwargs(SCHEMA, SimpleNamespace())


def test_completion_from_request_output():
    out = SimpleNamespace(prompt_token_ids=[1, 2, 3],
                          outputs=[SimpleNamespace(text='{"a": 1}', token_ids=[5, 6], finish_reason="stop")])
    c = completion_from_output(out)
    assert (c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason, c.ok) == ('{"a": 1}', 3, 2, "stop", True)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_missing_vllm_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # make the import fail even if a stray copy appears
    with pytest.raises(ImportError, match="pip install vllm"):
        load_llm("vllm:Qwen/Qwen2.5-7B-Instruct")
