"""Reading model replies: the first JSON object in a reply, whatever the model wrapped around it.

Models wrap JSON in prose or ``` fences and sometimes add a second object; constrained engines do not, but a reply
cut off by its token budget is never valid. Strings may hold raw newlines (llama.cpp's grammar lets them through),
so decoding is not strict about control characters.

A reply is untrusted text of up to `llm.max_reply_bytes`: finding the object takes time linear in its length (one
pass over the brackets and strings from each candidate '{', never a parse attempt from every '{' of the text), and
nesting deeper than `bounded_json.MAX_DEPTH` fails the reply, never the process.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from linksyn.common import bounded_json

_FENCE = "```"
_FENCE_TAG = re.compile(r"(?:json|JSON)?\s*")
_STRUCTURE = re.compile(r'[^{}\[\]"]*+')
_OBJECT_START = re.compile(r'\{\s*["}]')
"""How every JSON object begins: a span that does not (LaTeX's \\frac{1}{2}) is not decoded."""
"""Text outside strings up to the next bracket or quote."""
_STRING_REST = re.compile(r'[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
"""The rest of a JSON string after its opening quote, closing quote included."""
MAX_RESTARTS = 8
"""Scans that run to the end of the text without closing their object, after which the search stops: each costs a
pass over the rest of the text, so this bounds the work at a few passes."""


class ReplyError(ValueError):
    """A reply that is not what was asked for; the message says what is wrong and quotes the value."""


def fenced_blocks(text: str) -> Iterator[str]:
    """The insides of ``` fences (an optional json tag and whitespace after the opening fence dropped), in order;
    an opening fence without a closing one ends the search."""
    start = text.find(_FENCE)
    while start != -1:
        body = start + len(_FENCE)
        end = text.find(_FENCE, body)
        if end == -1:
            return
        body = _FENCE_TAG.match(text, body, end).end()
        yield text[body:end]
        start = text.find(_FENCE, end + len(_FENCE))


def first_json_object(text: str, max_depth: int = bounded_json.MAX_DEPTH) -> dict[str, Any]:
    """The first JSON object in `text` (inside ``` fences first, then anywhere), or ReplyError (saying why the first
    candidate failed, when there was one)."""
    why = ""
    for chunk in [*fenced_blocks(text), text]:
        found, reason = _first_object(chunk, max_depth)
        if found is not None:
            return found
        why = why or reason
    preview = text.strip().replace("\n", " ")
    preview = preview[:120] + ("..." if len(preview) > 120 else "")
    raise ReplyError(f"reply holds no JSON object{f' ({why})' if why else ''}: {preview!r}")


def _first_object(text: str, max_depth: int) -> tuple[dict[str, Any] | None, str]:
    """(the first object, or None and why the first candidate failed)."""
    restarts = 0
    why = ""
    start = text.find("{")
    while start != -1:
        scan = _scan(text, start, max_depth)
        found, error = _decode_first(text, scan.objects)
        if found is not None:
            return found, ""
        why = why or error or (f"nested deeper than {max_depth} levels" if scan.too_deep else "")
        if scan.end < len(text):  # closed, a bracket that matches nothing, or too deep: go on after it
            start = text.find("{", scan.end)
            continue
        # The object from `start` never closed. A '{' this scan saw inside a string may still begin an object
        # (prose quotes put the scan out of step): follow a few of those, then stop.
        restarts += 1
        if restarts >= MAX_RESTARTS or scan.quoted_brace == -1:
            break
        start = scan.quoted_brace
    return None, why


class _Scan:
    __slots__ = ("objects", "closed", "too_deep", "end", "quoted_brace")

    def __init__(self) -> None:
        self.objects: list[tuple[int, int]] = []
        """(start, end) of every balanced object span, outermost first, then by start."""
        self.closed = False
        self.too_deep = False
        self.end = 0
        self.quoted_brace = -1
        """The first '{' inside a string of this scan (-1: none)."""


def _scan(text: str, start: int, max_depth: int) -> _Scan:
    """Brackets and strings from the '{' at `start` until its object closes, a bracket does not match, the nesting
    passes `max_depth`, or the text ends."""
    scan = _Scan()
    stack: list[tuple[str, int]] = []
    opened: list[tuple[int, int]] = []  # object spans closed so far
    at = start
    n = len(text)
    while at < n:
        c = text[at]
        if c == '"':
            m = _STRING_REST.match(text, at + 1)
            if m is None:  # an unterminated string runs to the end
                if scan.quoted_brace == -1:
                    scan.quoted_brace = text.find("{", at + 1)
                at = n
                break
            if scan.quoted_brace == -1:
                brace = text.find("{", at + 1, m.end())
                scan.quoted_brace = brace
            at = m.end()
        elif c in "{[":
            if len(stack) >= max_depth:
                scan.too_deep = True
                at += 1
                break
            stack.append((c, at))
            at += 1
        elif c in "}]":
            if not stack or (stack[-1][0] == "{") != (c == "}"):
                break  # a closer that matches nothing: the candidate is not JSON
            kind, opened_at = stack.pop()
            at += 1
            if kind == "{":
                opened.append((opened_at, at))
            if not stack:
                scan.closed = True
                break
        at = _STRUCTURE.match(text, at).end() if at < n and text[at] not in '{}[]"' else at
    scan.end = at
    # Outermost (the one from `start`) first, then inner ones in order of where they start.
    opened.sort(key=lambda span: (span[0] != start, span[0]))
    scan.objects = opened
    return scan


def _decode_first(text: str, spans: list[tuple[int, int]]) -> tuple[dict[str, Any] | None, str]:
    """The first span that decodes to an object, or None and why the first one failed. A span holding the position
    where a containing span failed fails there too (JSON values parse the same inside and out), so it is not
    decoded again. Each span is decoded as its own string: a decode error costs time in the span's length (json
    counts lines from the start of the string it was given)."""
    failed_at: list[int] = []
    first_error = ""
    for s, e in spans:
        if any(s <= p < e for p in failed_at) or not _OBJECT_START.match(text, s):
            continue
        try:
            value = bounded_json.loads(text[s:e], strict=False)
        except bounded_json.BoundedJSONError as err:
            first_error = first_error or str(err)
            if err.pos is not None:
                failed_at.append(s + err.pos)
            continue
        if isinstance(value, dict):
            return value, ""
    return None, first_error
