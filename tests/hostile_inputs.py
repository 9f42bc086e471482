"""The regression corpus of issue 21: every crafted input that once crashed a run, stalled a service or leaked a
secret, built in code (some are megabytes). The regression tests and the fuzzers (tests/fuzz) both start from it."""

from __future__ import annotations

import json

DEEP = 100_000
"""Nesting depth of the deep-JSON inputs (far past Python's recursion limit)."""

GOOD_ROW = {"question": "What is 2 + 2?", "answer": "4"}


def deep_json(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


JSONL_ROWS: dict[str, str] = {
    "deep nesting": json.dumps(GOOD_ROW)[:-1] + ', "x": ' + deep_json() + "}",
    "deep nesting alone": deep_json(),
    "lone surrogate": '{"question": "q\\ud800", "answer": "a"}',
    "lone low surrogate in a key": '{"question": "q", "answer": "a", "\\udc00": 1}',
    "5000-digit integer": '{"question": "q", "answer": "a", "n": ' + "1" * 5000 + "}",
    "5000-digit answer": '{"question": "q", "answer": ' + "7" * 5000 + "}",
}
"""JSON Lines rows, each to be rejected with its file and line while the rows around it go through."""

CSV_FIELD_OVER_128K = "x" * (128 * 1024 + 1)
"""A CSV field past the csv module's default field limit (131072 characters)."""

LLM_REPLIES: dict[str, str] = {
    "deep nesting": '{"knowledge_points": ' + deep_json() + "}",
    "deep open objects": '{"a":' * DEEP,
    "many open braces": "{" * 200_000,
    "unclosed string after many braces": '{"a": "' + "{" * 200_000,
    "nested unclosed objects": '{"k": ' * 20_000 + "1",
    "fence without end": "```json " + " " * 100_000,
    "5000-digit difficulty": '{"difficulty": ' + "9" * 5000 + "}",
    "lone surrogate": '{"question": "\\ud800", "answer": "a"}',
}
"""Model replies (the text of a chat completion): each must fail alone with a ReplyError, fast."""

CHAT_BODIES: dict[str, str] = {
    "usage is a string": json.dumps({"choices": [{"message": {"content": "{}"}}], "usage": "x"}),
    "usage tokens are a list": json.dumps({"choices": [{"message": {"content": "{}"}}], "usage": {"prompt_tokens": [1]}}),
    "usage tokens overflow": '{"choices": [{"message": {"content": "{}"}}], "usage": {"prompt_tokens": 1e999}}',
    "usage tokens 5000 digits": '{"choices": [{"message": {"content": "{}"}}], "usage": {"prompt_tokens": '
    + "1" * 5000 + "}}",
    "content is a number": json.dumps({"choices": [{"message": {"content": 5}}]}),
    "choice is a string": json.dumps({"choices": ["x"]}),
    "deep nesting": '{"choices": ' + deep_json() + "}",
}
"""Chat-completions response bodies from an OpenAI-compatible server: each fails its own request only."""

SHELL_DATA = "x; id > /tmp/pwned #"
"""StartRun's `data` from the issue: it must never reach a shell."""
