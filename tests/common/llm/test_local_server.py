"""The openai backend against a real OpenAI-compatible server (llama.cpp) on loopback serving the packaged SmolLM2."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest

from linksyn.common.llm import load_llm
from linksyn.common.llm.base import ChatRequest, SamplingParams

from tests.common.llm.llm_workload import KP_SCHEMA, QUESTIONS, kp_request


@pytest.fixture(scope="module")
def server_llm(openai_server):
    llm = load_llm(openai_server.spec, max_concurrency=16, request_timeout_s=300)
    yield llm
    llm.close()


def test_server_lists_the_model(openai_server):
    r = httpx.get(f"{openai_server.base_url}/models", timeout=5)
    assert r.status_code == 200 and openai_server.model_name in [m["id"] for m in r.json()["data"]]


def test_plain_batch_text_and_token_counts(server_llm):
    reqs = [ChatRequest(messages=({"role": "user", "content": q},), params=SamplingParams(max_tokens=10))
            for q in QUESTIONS[:3]]
    out = server_llm.generate(reqs)
    for c in out:
        assert c.ok, c.error
        assert c.text.strip() and c.prompt_tokens > 5 and 1 <= c.completion_tokens <= 10
    assert server_llm.usage.prompt_tokens >= sum(c.prompt_tokens for c in out)


@pytest.mark.slow
def test_every_schema_reply_is_valid_json_with_many_in_flight(server_llm):
    questions = QUESTIONS * 2  # 12 requests sent at once; the server queues them
    out = server_llm.generate([kp_request(q) for q in questions])
    assert len(out) == len(questions)
    for c in out:
        assert c.ok, c.error
        # strict=False: llama.cpp's grammar sampling lets raw newlines into JSON strings (control characters that
        # strict JSON forbids); everything else about the reply is schema-valid.
        jsonschema.validate(json.loads(c.text, strict=False), KP_SCHEMA)
        assert c.completion_tokens > 0
    # llama.cpp's server takes the schema as {"type": "json_object", "schema": ...}; the backend found that out
    assert server_llm.structured_mode in ("json_schema", "json_object_schema")
