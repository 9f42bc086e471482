"""The openai backend against a scripted real HTTP server on loopback: retries, timeouts, errors, the API key."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from linksyn.common.config import RetryConfig
from linksyn.common.llm import load_llm
from linksyn.common.llm.base import ChatRequest, SamplingParams
from linksyn.common.llm.openai import OpenAILLM, parse_reply, request_body

SECRET = "sk-test-0123456789abcdef-secret"

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False}


class ScriptedServer:
    """An OpenAI-style /v1/chat/completions endpoint whose behaviour each request's user text selects.

    'ok' -> 200; 'flaky-N' -> 500 for the first N calls then 200; 'rate' -> 429 (Retry-After: 0) once then 200;
    'rate-N' -> 429 (retry-after-ms: 20) for the first N calls then 200; 'busy-N' -> 503 (no Retry-After) for the
    first N calls then 200;
    'fail' -> always 500; 'bad400' -> 400; 'hang' -> no reply until the server stops; 'garbage' -> 200 non-JSON
    once then 200; 'slow' -> 200 after 0.2 s; 'echo-key' -> 500 whose body echoes the Authorization header.
    `reject_schema`: any response_format of type json_schema gets a 400 naming response_format;
    `reject_schema_key`: so does a json_object response_format that carries a schema."""

    def __init__(self, reject_schema: bool = False, reject_schema_key: bool = False, broken: bool = False) -> None:
        self.calls: dict[str, int] = {}
        self.bodies: list[dict] = []
        self.auth_headers: list[str | None] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.reject_schema = reject_schema
        self.reject_schema_key = reject_schema_key
        self.broken = broken
        """Answer every request with 500 (a dead endpoint behind a live load balancer)."""
        self.release = threading.Event()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.bodies.append(body)
                    outer.auth_headers.append(self.headers.get("Authorization"))
                    outer.in_flight += 1
                    outer.peak_in_flight = max(outer.peak_in_flight, outer.in_flight)
                try:
                    outer.handle(self, body)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        key = body["messages"][-1]["content"]
        with self.lock:
            n = self.calls[key] = self.calls.get(key, 0) + 1
        kind = key.split(":")[0]
        rf = body.get("response_format") or {}
        if self.broken:
            return self.reply(h, 500, {"error": {"message": "endpoint down"}})
        if kind.startswith("busy-") and n <= int(kind.split("-")[1]):
            return self.reply(h, 503, {"error": {"message": "server busy"}})
        if kind.startswith("rate-") and n <= int(kind.split("-")[1]):
            return self.reply(h, 429, {"error": {"message": "rate limited"}}, {"retry-after-ms": "20", "Retry-After": "1"})
        if self.reject_schema and rf.get("type") == "json_schema":
            return self.reply(h, 400, {"error": {"message": "response_format type json_schema is not supported"}})
        if self.reject_schema_key and "schema" in rf:
            return self.reply(h, 422, {"detail": [{"loc": ["body", "response_format", "schema"], "msg": "extra"}]})
        if kind == "fail" or (kind.startswith("flaky-") and n <= int(kind.split("-")[1])):
            return self.reply(h, 500, {"error": {"message": f"internal error #{n}"}})
        if kind == "rate" and n == 1:
            return self.reply(h, 429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if kind == "bad400":
            return self.reply(h, 400, {"error": {"message": "messages too long"}})
        if kind == "echo-key":
            return self.reply(h, 500, {"error": {"message": f"bad key {h.headers.get('Authorization')}"}})
        if kind == "hang":
            self.release.wait(30)
            return
        if kind == "garbage" and n == 1:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.end_headers()
            h.wfile.write(b"<html>not json")
            return
        if kind == "slow":
            time.sleep(0.2)
        content = json.dumps({"a": key}) if rf else f"echo {key}"
        self.reply(h, 200, {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        })

    @staticmethod
    def reply(h: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.close()


FAST = dict(retry=RetryConfig(backoff_initial_s=0.01, backoff_max_s=0.05, max_attempts=3), request_timeout_s=2.0)


@pytest.fixture
def make_llm():
    made: list[OpenAILLM] = []

    def make(url: str, **options) -> OpenAILLM:
        llm = load_llm(f"openai:{url}#test-model", **(FAST | options))
        assert isinstance(llm, OpenAILLM)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()


def req(text: str, schema: dict | None = None) -> ChatRequest:
    return ChatRequest(messages=({"role": "user", "content": text},), params=SamplingParams(max_tokens=16),
                       json_schema=schema, request_id=text)


def test_plain_batch_returns_text_and_usage(server, make_llm):
    llm = make_llm(server.url)
    out = llm.generate([req("ok:1"), req("ok:2")])
    assert [c.text for c in out] == ["echo ok:1", "echo ok:2"]
    assert all(c.ok and c.prompt_tokens == 11 and c.completion_tokens == 7 and c.finish_reason == "stop" for c in out)
    assert (llm.usage.requests, llm.usage.prompt_tokens, llm.usage.completion_tokens) == (2, 22, 14)
    assert server.bodies[0]["model"] == "test-model" and server.bodies[0]["max_tokens"] == 16


def test_500s_then_success_is_retried(server, make_llm):
    out = make_llm(server.url).generate([req("flaky-2:x")])
    assert out[0].ok and out[0].text == "echo flaky-2:x"
    assert out[0].meta["attempts"] == 3 and server.calls["flaky-2:x"] == 3


def test_429_then_success_is_retried(server, make_llm):
    out = make_llm(server.url).generate([req("rate:x")])
    assert out[0].ok and server.calls["rate:x"] == 2


def test_malformed_reply_is_retried(server, make_llm):
    out = make_llm(server.url).generate([req("garbage:x")])
    assert out[0].ok and server.calls["garbage:x"] == 2


def test_always_500_fails_after_max_attempts_and_spares_the_batch(server, make_llm):
    llm = make_llm(server.url)
    out = llm.generate([req("ok:a"), req("fail:b"), req("flaky-1:c"), req("ok:d")])
    assert [c.ok for c in out] == [True, False, True, True]
    bad = out[1]
    assert "HTTP 500" in bad.error and "internal error" in bad.error and "3 attempts" in bad.error
    assert bad.retryable and bad.meta["status"] == 500
    assert server.calls["fail:b"] == 3
    assert llm.usage.failed == 1 and llm.usage.requests == 4


def test_client_error_is_not_retried(server, make_llm):
    out = make_llm(server.url).generate([req("bad400:x")])
    assert not out[0].ok and not out[0].retryable and "HTTP 400" in out[0].error
    assert server.calls["bad400:x"] == 1


def test_hanging_server_times_out(server, make_llm):
    llm = make_llm(server.url, request_timeout_s=0.3, retry=RetryConfig(backoff_initial_s=0.01, backoff_max_s=0.05, max_attempts=2))
    out = llm.generate([req("hang:x"), req("ok:y")])
    assert not out[0].ok and "timeout" in out[0].error and out[0].retryable
    assert server.calls["hang:x"] == 2
    assert out[1].ok


def test_connection_refused_is_an_error_not_an_exception(make_llm):
    s = ScriptedServer()
    url = s.url
    s.close()  # nothing listens there any more
    out = make_llm(url, retry=RetryConfig(backoff_initial_s=0.01, backoff_max_s=0.05, max_attempts=2)).generate([req("ok:x")])
    assert not out[0].ok and "connection error" in out[0].error and out[0].retryable


def test_many_requests_in_flight_bounded_by_max_concurrency(server, make_llm):
    llm = make_llm(server.url, max_concurrency=8)
    out = llm.generate([req(f"slow:{i}") for i in range(40)])
    assert all(c.ok for c in out) and [c.text for c in out] == [f"echo slow:{i}" for i in range(40)]
    assert 4 <= server.peak_in_flight <= 8


def test_json_schema_sent_as_response_format(server, make_llm):
    out = make_llm(server.url).generate([req("ok:s", SCHEMA)])
    assert json.loads(out[0].text) == {"a": "ok:s"}
    rf = server.bodies[0]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["schema"] == SCHEMA
    assert out[0].meta["structured_output"] == "json_schema"


def test_server_rejecting_json_schema_steps_down_and_remembers(make_llm):
    s = ScriptedServer(reject_schema=True)
    try:
        llm = make_llm(s.url)
        first = llm.generate([req("ok:1", SCHEMA)])
        assert first[0].ok and first[0].meta["structured_output"] == "json_object_schema"
        assert llm.structured_mode == "json_object_schema"
        s.bodies.clear()
        second = llm.generate([req("ok:2", SCHEMA)])
        assert second[0].ok
        # no json_schema attempt any more; the schema still travels (llama.cpp's form)
        assert [b["response_format"] for b in s.bodies] == [{"type": "json_object", "schema": SCHEMA}]
    finally:
        s.close()


def test_server_rejecting_every_schema_form_ends_in_json_mode(make_llm):
    s = ScriptedServer(reject_schema=True, reject_schema_key=True)
    try:
        llm = make_llm(s.url)
        first = llm.generate([req("ok:first", SCHEMA)])
        assert first[0].ok and llm.structured_mode == "json_object"
        out = llm.generate([req("ok:last", SCHEMA)])
        assert out[0].ok and s.bodies[-1]["response_format"] == {"type": "json_object"}
    finally:
        s.close()


def test_unrelated_400_does_not_step_down(server, make_llm):
    llm = make_llm(server.url)
    out = llm.generate([req("bad400:x", SCHEMA)])
    assert not out[0].ok and llm.structured_mode == "json_schema"


def test_api_key_sent_as_bearer_and_never_shown(server, make_llm, monkeypatch, caplog):
    monkeypatch.setenv("LINKSYN_TEST_LLM_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    llm = make_llm(server.url, api_key_env="LINKSYN_TEST_LLM_KEY")
    out = llm.generate([req("ok:k"), req("echo-key:k"), req("flaky-1:k")])
    assert set(server.auth_headers) == {f"Bearer {SECRET}"}
    assert out[0].ok and not out[1].ok
    assert SECRET not in out[1].error and "***" in out[1].error  # the server echoed it; we redact
    assert SECRET not in repr(llm) and "api_key=set" in repr(llm)
    assert SECRET not in caplog.text
    assert SECRET not in repr(llm.config)


def test_no_key_no_header(server, make_llm, monkeypatch):
    monkeypatch.delenv("LINKSYN_TEST_LLM_KEY", raising=False)
    make_llm(server.url, api_key_env="LINKSYN_TEST_LLM_KEY").generate([req("ok:n")])
    assert server.auth_headers == [None]


def test_request_body_and_reply_parsing():
    r = ChatRequest(messages=({"role": "user", "content": "q"},),
                    params=SamplingParams(temperature=0.7, top_p=0.9, max_tokens=5, seed=3, stop=("\n",)))
    body = request_body("m", r, "json_schema")
    assert body == {"model": "m", "messages": [{"role": "user", "content": "q"}], "temperature": 0.7, "top_p": 0.9,
                    "max_tokens": 5, "seed": 3, "stop": ["\n"]}
    schema_req = ChatRequest(messages=r.messages, json_schema=SCHEMA)
    assert request_body("m", schema_req, "json_object")["response_format"] == {"type": "json_object"}
    assert "response_format" not in request_body("m", schema_req, "none")
    c = parse_reply({"choices": [{"message": {"content": "hi"}, "finish_reason": "length"}]})
    assert (c.text, c.finish_reason, c.prompt_tokens) == ("hi", "length", 0)
    with pytest.raises(ValueError, match="choices"):
        parse_reply({"error": "x"})


def test_adaptive_429s_are_flow_control_and_spend_no_attempt(server, make_llm):
    """Turned away 5 times with max_attempts=3: adaptive waits its turn (the endpoint pauses for retry-after-ms) and
    succeeds; fixed counts each 429 as a failed attempt and gives up."""
    adaptive = make_llm(server.url).generate([req(f"rate-5:{i}") for i in range(3)])
    assert all(c.ok for c in adaptive), [c.error for c in adaptive]
    assert all(c.meta["attempts"] == 1 for c in adaptive)
    assert all(server.calls[f"rate-5:{i}"] == 6 for i in range(3))
    fixed = make_llm(server.url, concurrency="fixed").generate([req("rate-5:f")])
    assert not fixed[0].ok and "HTTP 429" in fixed[0].error and "after 3 attempts" in fixed[0].error


def test_a_503_storm_shrinks_the_adaptive_limit_a_quota_only_pauses_it(server, make_llm):
    llm = make_llm(server.url, initial_concurrency=8, max_concurrency=8)
    out = llm.generate([req(f"busy-2:{i}") for i in range(16)])
    assert all(c.ok for c in out)
    (endpoint,) = llm.endpoints
    assert endpoint.limit.cuts >= 1 and endpoint.counts["overloaded"] == 32
    quota = make_llm(server.url, initial_concurrency=8, max_concurrency=8)
    out = quota.generate([req(f"rate-2:{i}") for i in range(16)])
    assert all(c.ok for c in out)
    (endpoint,) = quota.endpoints
    assert endpoint.counts["throttled"] == 32 and endpoint.limit.cuts == 0 and endpoint.limit.slots == 8


def test_a_dead_endpoint_opens_its_circuit_and_the_healthy_one_takes_the_load(server, make_llm):
    dead = ScriptedServer(broken=True)
    try:
        llm = make_llm(f"{dead.url},{server.url}", flow={"circuit_failures": 2, "circuit_open_s": 30})
        out = llm.generate([req(f"ok:{i}") for i in range(30)])
        assert all(c.ok for c in out), [c.error for c in out if not c.ok]
        bad, good = llm.endpoints
        assert bad.url == dead.url and bad.circuit.state.name == "OPEN"
        assert len(dead.bodies) <= 2 + 4  # the failures that opened it, and those already on their way
        assert good.counts["ok"] == 30
    finally:
        dead.close()


def test_every_circuit_open_fails_the_attempt_with_the_last_error(make_llm):
    dead = ScriptedServer(broken=True)
    try:
        llm = make_llm(dead.url, retry=RetryConfig(backoff_initial_s=0.01, backoff_max_s=0.02, max_attempts=2),
                       flow={"circuit_failures": 1, "circuit_open_s": 30, "circuit_wait_s": 0.2})
        (c,) = llm.generate([req("ok:x")])
        assert not c.ok and c.retryable and "circuit is open" in c.error and "HTTP 500" in c.error
        assert len(dead.bodies) == 1
    finally:
        dead.close()


def test_retry_after_ms_wins_over_retry_after():
    import httpx
    from linksyn.common.llm.openai import retry_after_seconds

    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250", "Retry-After": "1"})) == "0.25"
    assert retry_after_seconds(httpx.Headers({"Retry-After": "3"})) == "3"
    assert retry_after_seconds(httpx.Headers({})) is None
