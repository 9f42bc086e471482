"""The hf backend on the real packaged SmolLM2 (transformers in-process, CPU), plus its pure parts."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch

from linksyn.common.llm.base import ChatRequest, SamplingParams
from linksyn.common.llm.hf import bitmask_to_bool, pick_tokens

from tests.common.llm.llm_workload import KP_SCHEMA, QUESTIONS, kp_request  # beside this file


def chat(text: str, **kw) -> ChatRequest:
    schema = kw.pop("json_schema", None)
    return ChatRequest(messages=({"role": "user", "content": text},), params=SamplingParams(**kw),
                       json_schema=schema, request_id=text[:20])


def test_batched_generation_returns_text_and_token_counts(hf_llm):
    tok = hf_llm._loaded.tokenizer
    reqs = [chat(q, max_tokens=12) for q in QUESTIONS[:3]]
    before = hf_llm.usage.completion_tokens
    out = hf_llm.generate(reqs)
    assert len(out) == 3
    for r, c in zip(reqs, out):
        assert c.ok and c.text.strip()
        prompt = tok.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False)
        assert c.prompt_tokens == len(tok(prompt, add_special_tokens=False)["input_ids"])
        assert 1 <= c.completion_tokens <= 12 and c.finish_reason in ("stop", "length")
    assert len({c.prompt_tokens for c in out}) == 3  # different lengths: the batch really was padded
    assert hf_llm.usage.completion_tokens - before == sum(c.completion_tokens for c in out)


def test_left_padding_does_not_change_greedy_output(hf_llm):
    short, long_ = chat("Name a prime number.", max_tokens=8), chat(QUESTIONS[2], max_tokens=8)
    alone = hf_llm.generate([short])[0]
    padded = hf_llm.generate([long_, short])[1]  # short is left-padded to the long prompt here
    assert padded.text == alone.text and padded.completion_tokens == alone.completion_tokens


def test_submit_resolves_each_row_as_it_finishes_while_the_batch_decodes_on(hf_llm):
    """One padded batch: the 2-token request's future is done while the 24-token ones are still decoding."""
    reqs = [chat(QUESTIONS[2], max_tokens=24), chat(QUESTIONS[1], max_tokens=2), chat(QUESTIONS[0], max_tokens=24)]
    futures = hf_llm.submit(reqs)
    others_done_when_short_finished: list[bool] = []
    futures[1].add_done_callback(lambda _f: others_done_when_short_finished.append(futures[0].done() or futures[2].done()))
    out = [f.result(timeout=300) for f in futures]
    assert others_done_when_short_finished == [False]
    assert out[1].completion_tokens == 2 and out[1].finish_reason == "length"
    assert [c.text for c in out] == [c.text for c in hf_llm.generate(reqs)]  # the same replies as one generate call


@pytest.mark.slow
def test_every_reply_of_a_schema_batch_is_valid_json(hf_llm):
    out = hf_llm.generate([kp_request(q) for q in QUESTIONS])
    for q, c in zip(QUESTIONS, out):
        assert c.ok, c.error
        assert c.finish_reason == "stop", (q, c.text)
        jsonschema.validate(json.loads(c.text), KP_SCHEMA)
        assert c.prompt_tokens > 0 and c.completion_tokens > 0


@pytest.mark.slow
def test_mixed_batch_max_tokens_stop_and_seed(hf_llm):
    reqs = [
        chat("Count from 1 to 20.", max_tokens=40, stop=("4",)),
        chat("Say hello.", max_tokens=1),
        chat("Tell me a word.", max_tokens=6, temperature=1.0, seed=11),
        kp_request(QUESTIONS[0]),
    ]
    out = hf_llm.generate(reqs)
    assert out[0].ok and out[0].finish_reason == "stop" and "4" not in out[0].text and "3" in out[0].text
    assert out[1].completion_tokens == 1 and out[1].finish_reason == "length"
    jsonschema.validate(json.loads(out[3].text), KP_SCHEMA)
    again = hf_llm.generate([reqs[2]])[0]
    assert again.text == out[2].text  # same seed, same sample


def test_unusable_schema_fails_that_request_only(hf_llm):
    bad = {"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}, "required": ["a"]}
    out = hf_llm.generate([chat("Hi", max_tokens=4, json_schema=bad), chat("Hi", max_tokens=4)])
    assert not out[0].ok and not out[0].retryable and "schema" in out[0].error
    assert out[1].ok


def test_pick_tokens_greedy_and_sampled():
    logits = torch.tensor([[0.0, 5.0, 1.0], [0.0, 5.0, 1.0], [3.0, float("-inf"), 2.0]])
    g = torch.Generator().manual_seed(0)
    out = pick_tokens(logits, [0.0, 1.0, 0.0], [1.0, 0.01, 1.0], [None, g, None])
    # top_p=0.01 keeps only the most likely token, so the sampled row is deterministic too
    assert out.tolist() == [1, 1, 0]


def test_bitmask_to_bool_unpacks_little_endian_bits():
    mask = torch.tensor([[0b101, -1], [0, -(1 << 31)]], dtype=torch.int32)  # -(1 << 31): only bit 31 set
    allowed = bitmask_to_bool(mask, 40)
    assert allowed.shape == (2, 40)
    assert allowed[0, :3].tolist() == [True, False, True] and not allowed[0, 3:32].any() and allowed[0, 32:].all()
    assert not allowed[1, :40].any()  # bit 63 is beyond the vocabulary
    assert bitmask_to_bool(mask, 70)[1, 63] and not bitmask_to_bool(mask, 70)[:, 64:].any()
