"""The openai backend behind a rate-limited endpoint: the token-bucket proxy (tests.tooling.rate_limit_proxy) in front
of a real loopback HTTP server. Adaptive concurrency keeps every request alive through the 429s; a fixed
concurrency set too high loses requests. (The figures against the real llama.cpp server are bench/synth.py's.)"""

from __future__ import annotations

import pytest
from linksyn.common.config import RetryConfig
from linksyn.common.llm import load_llm
from linksyn.common.llm.base import ChatRequest, SamplingParams

from tests.common.llm.test_openai import ScriptedServer
from tests.tooling.rate_limit_proxy import RateLimitProxy, TokenBucket

pytestmark = pytest.mark.timeout(120)


def test_token_bucket_starts_full_refills_at_its_rate_and_says_how_long_to_wait():
    b = TokenBucket(rate=2.0, burst=2, now=0.0)
    assert b.take(0.0) == 0 and b.take(0.0) == 0
    assert b.take(0.0) == pytest.approx(0.5)
    assert b.take(0.25) == pytest.approx(0.25)
    assert b.take(0.5) == 0
    assert b.take(10.0) == 0 and b.take(10.0) == 0 and b.take(10.0) > 0  # never more than the burst


def req(i: int) -> ChatRequest:
    return ChatRequest(messages=({"role": "user", "content": f"ok:{i}"},), params=SamplingParams(max_tokens=4),
                       request_id=str(i))


@pytest.fixture
def proxied():
    server = ScriptedServer()
    with RateLimitProxy(server.url, rate=20.0, burst=1) as proxy:
        yield proxy
    server.close()


def test_adaptive_gets_every_request_through_at_the_allowed_rate(proxied):
    llm = load_llm(f"openai:{proxied.base_url}#m", max_concurrency=16,
                   retry=RetryConfig(max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.5))
    try:
        out = llm.generate([req(i) for i in range(40)])
    finally:
        llm.close()
    assert all(c.ok for c in out), [c.error for c in out if not c.ok]
    assert proxied.counts["forwarded"] == 40
    (endpoint,) = llm.endpoints
    # The 429s paused the endpoint until the next token (Retry-After) and did not cut the limit: a quota is a rate.
    assert endpoint.counts["throttled"] >= 1 and endpoint.limit.cuts == 0
    span = proxied.forwarded_at[-1] - proxied.forwarded_at[0]
    assert span >= (40 - 1) / 20.0 * 0.9  # never faster than the bucket allows (it is a real limit)


def test_fixed_concurrency_too_high_turns_429s_into_failed_requests(proxied):
    llm = load_llm(f"openai:{proxied.base_url}#m", concurrency="fixed", max_concurrency=16,
                   retry=RetryConfig(max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.5))
    try:
        out = llm.generate([req(i) for i in range(40)])
    finally:
        llm.close()
    failed = [c for c in out if not c.ok]
    assert failed and all("HTTP 429" in c.error and c.retryable for c in failed)
    assert proxied.counts["limited"] >= len(failed) * 2
