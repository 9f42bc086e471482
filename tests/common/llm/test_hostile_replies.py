"""Model replies and server bodies crafted to break a batch (issue 21): each fails its own request with a reason,
never the batch or the process; the JSON-object scan stays linear."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from linksyn.common.config import RetryConfig
from linksyn.common.llm import load_llm
from linksyn.common.llm.base import ChatRequest, SamplingParams
from linksyn.common.llm.reply import ReplyError, first_json_object

from tests.hostile_inputs import CHAT_BODIES, LLM_REPLIES

GOOD_BODY = json.dumps({"choices": [{"message": {"content": '{"a": "ok"}'}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 2}})


@pytest.mark.parametrize("name", sorted(LLM_REPLIES))
def test_a_hostile_reply_is_a_reply_error(name: str) -> None:
    with pytest.raises(ReplyError) as e:
        first_json_object(LLM_REPLIES[name])
    assert "reply holds no JSON object" in str(e.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('Sure! ```json\n{"a": 1}\n``` done', {"a": 1}),
        ('Here it is: {"a": {"b": 2}} and {"c": 3}', {"a": {"b": 2}}),
        ("The answer is \\frac{1}{2}. " + '{"q": 1}', {"q": 1}),
        ('Use { to open. {"a": 1}', {"a": 1}),
        ('He said "hi {there". {"a": 1}', {"a": 1}),  # a prose quote before the object
        ('{a] {"q": 2}', {"q": 2}),
        ('{"x": {"y": 1}, bad}', {"y": 1}),  # the outer object is broken, an inner one is whole
        ('x {"a": "b\\"}"} y', {"a": 'b"}'}),
        ("```\n" + '{"a": 1}```', {"a": 1}),
        ('{"a": "line\nbreak"}', {"a": "line\nbreak"}),  # raw newlines in strings (llama.cpp grammars allow them)
    ],
)
def test_the_first_object_is_found_around_prose_fences_and_braces(text: str, expected: dict) -> None:
    assert first_json_object(text) == expected


def test_a_reply_nested_within_the_limit_still_parses() -> None:
    deep = '{"a": ' + "[" * 60 + "1" + "]" * 60 + "}"
    assert first_json_object(deep)["a"] is not None


class RawBodyServer:
    """An OpenAI-compatible endpoint that answers each request with the raw body its user text names."""

    def __init__(self, bodies: dict[str, str]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                data = bodies.get(body["messages"][-1]["content"], GOOD_BODY).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def raw_server() -> Iterator[RawBodyServer]:
    s = RawBodyServer(CHAT_BODIES)
    yield s
    s.close()


def test_a_hostile_server_body_fails_its_own_request_and_spares_the_batch(raw_server: RawBodyServer) -> None:
    llm = load_llm(f"openai:{raw_server.url}#m", retry=RetryConfig(max_attempts=1), request_timeout_s=10.0)
    try:
        names = sorted(CHAT_BODIES)
        requests = [ChatRequest(messages=({"role": "user", "content": text},), params=SamplingParams(max_tokens=8),
                                request_id=text) for text in ["good", *names]]
        out = llm.generate(requests)
    finally:
        llm.close()
    assert out[0].ok and out[0].text == '{"a": "ok"}' and out[0].prompt_tokens == 3
    by_name = dict(zip(names, out[1:]))
    for name in ("usage is a string", "usage tokens are a list", "usage tokens overflow"):
        assert by_name[name].ok and by_name[name].prompt_tokens == 0, (name, by_name[name])  # bookkeeping only
    for name in ("usage tokens 5000 digits", "content is a number", "choice is a string", "deep nesting"):
        assert not by_name[name].ok and "malformed reply" in by_name[name].error, (name, by_name[name])
