"""The extractor against the real packaged SmolLM2: in-process (`load_llm('embedded')`) and through a real
OpenAI-compatible server on loopback serving it (the LLM helper's `openai_server` fixture)."""

from __future__ import annotations


import jsonschema
import pytest

from linksyn.extractor.config import ExtractorConfig
from linksyn.extractor.extractor import Extractor
from linksyn.extractor.reply import first_json_object

pytestmark = pytest.mark.slow


class RecordingLLM:
    """Wraps a real backend to keep the raw replies (to check them against the schema)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.replies: list = []

    def generate(self, requests):
        out = self.inner.generate(requests)
        self.replies.extend(out)
        return out


def check_extraction(llm, fixture_seeds) -> None:
    rec = RecordingLLM(llm)
    ex = Extractor.from_config(ExtractorConfig(trust_seed_labels=False, kp_merge=False), llm=rec)  # type: ignore[arg-type]
    outs = ex.extract(fixture_seeds)
    schema = ex.annotator.schema  # type: ignore[attr-defined]
    assert len(rec.replies) == len(fixture_seeds)
    failed: list[tuple[str, str]] = []
    for seed, c, o in zip(fixture_seeds, rec.replies, outs):
        assert c.ok, c.error
        jsonschema.validate(first_json_object(c.text), schema)  # schema-valid raw output, every seed
        assert c.prompt_tokens > 200 and c.completion_tokens > 0  # the instruction alone is hundreds of tokens
        if o.annotation is None:
            # A schema-valid reply can still be unusable (e.g. every KP a sentence over the word limit); that seed
            # is retried then dead-lettered with this reason by the stage. The 135M model does this now and then.
            assert o.error and o.retryable, (seed.question, c.text)
            failed.append((seed.question, o.error))
            continue
        a = o.annotation.to_proto(seed)
        assert 1 <= len(a.kps) <= 8 and a.discipline in schema["properties"]["discipline"]["enum"]
        assert 1 <= a.difficulty <= 5
        assert a.prompt_tokens == c.prompt_tokens and a.completion_tokens == c.completion_tokens
        assert a.annotator.endswith("@extract-v2")
    assert len(failed) <= len(fixture_seeds) // 4, failed


def test_embedded_smollm2_in_process(embedded_llm, fixture_seeds):
    check_extraction(embedded_llm, fixture_seeds)


def test_smollm2_through_openai_compatible_server(openai_server, fixture_seeds):
    from linksyn.common.llm import load_llm

    llm = load_llm(openai_server.spec)
    try:
        check_extraction(llm, fixture_seeds)
    finally:
        llm.close()
