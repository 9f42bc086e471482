"""llm.max_reply_bytes: the openai backend stops reading a reply body past the limit and fails that request, not
retried, naming the limit; the rest of the batch stands. Against a real HTTP server on loopback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.common.llm.test_openai import FAST, ScriptedServer, req

from linksyn.common.llm import load_llm
from linksyn.common.llm.openai import OpenAILLM

LIMIT = 4096


class BigReplies(ScriptedServer):
    """'big' -> a 200 reply of 1 MiB with Content-Length; 'big-stream' -> the same without Content-Length (the body
    ends when the connection closes, so only counting the bytes read can stop it); anything else -> a normal reply."""

    def handle(self, h: Any, body: dict) -> None:
        key = body["messages"][-1]["content"]
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
        if key.startswith("big"):
            data = json.dumps({"choices": [{"message": {"content": "x" * (1 << 20)}, "finish_reason": "stop"}]})
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            if key == "big":
                h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            try:
                h.wfile.write(data.encode())
            except OSError:
                pass  # the client hung up, as it should
            h.close_connection = True
            return
        self.reply(h, 200, {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo {key}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        })


@pytest.fixture
def server():
    s = BigReplies()
    yield s
    s.close()


def test_a_reply_over_max_reply_bytes_fails_without_retry_and_spares_the_batch(server: BigReplies) -> None:
    llm = load_llm(f"openai:{server.url}#m", **(FAST | {"max_reply_bytes": LIMIT}))
    assert isinstance(llm, OpenAILLM)
    try:
        small, big, streamed = llm.generate([req("small"), req("big"), req("big-stream")])
    finally:
        llm.close()
    assert small.ok and small.text == "echo small"
    for c in (big, streamed):
        assert not c.ok and c.retryable is False
        assert c.error.startswith(f"reply of more than {LIMIT} bytes exceeds llm.max_reply_bytes={LIMIT}"), c.error
    assert server.calls == {"small": 1, "big": 1, "big-stream": 1}  # not retried


def test_a_reply_under_the_limit_is_read_whole(server: BigReplies) -> None:
    llm = load_llm(f"openai:{server.url}#m", **(FAST | {"max_reply_bytes": 2 << 20}))
    try:
        [c] = llm.generate([req("big-stream")])
    finally:
        llm.close()
    assert c.ok and len(c.text) == 1 << 20
