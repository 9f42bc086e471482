"""JSON from outside (seed rows, LLM replies, server bodies), parsed so that any text fails only with a ValueError
that says why.

`json.loads` alone lets three things through as other exceptions or as values that break later: nesting deeper
than the interpreter's recursion limit (RecursionError, even inside a caller's `except ValueError`), an integer of
more than 4300 digits (a plain ValueError, not a JSONDecodeError), and a lone UTF-16 surrogate escape such as
"\\ud800" (a str that no UTF-8 encoder accepts: the protobuf fields and hashes it goes into raise
UnicodeEncodeError). `loads` refuses all three with a `BoundedJSONError`, and refuses nesting deeper than
`max_depth` (records linksyn reads are a few levels deep).

Cost: the parse itself (C), plus a walk of the parsed value only when the text could hold what the walk looks for:
more opening brackets than `max_depth`, or a surrogate escape.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted (a seed row or a model reply is 2-3 levels deep)."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class BoundedJSONError(ValueError):
    """Text that is not JSON, or JSON over a limit; the message says which, without quoting the text."""

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.pos = pos
        """Index in the text where a syntax error was found (None for a limit)."""


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, strict: bool = True) -> Any:
    """The JSON value in `text`; BoundedJSONError for invalid JSON, nesting over `max_depth`, a number too long to
    convert, or a lone surrogate. `strict=False` lets raw control characters into strings (as json does)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise BoundedJSONError(f"invalid UTF-8 at byte {e.start}") from None
    try:
        value = json.JSONDecoder(strict=strict).decode(text)
    except json.JSONDecodeError as e:
        where = f"column {e.colno}" if e.lineno == 1 else f"line {e.lineno} column {e.colno}"
        raise BoundedJSONError(f"invalid JSON: {e.msg} at {where}", e.pos) from None
    except RecursionError:
        raise BoundedJSONError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as e:  # int() past sys.get_int_max_str_digits()
        raise BoundedJSONError(f"invalid JSON: {_number_reason(e)}") from None
    check_value(value, text, max_depth)
    return value


def check_value(value: Any, text: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a parsed `value` (from `text`) nested deeper than `max_depth` or holding a lone surrogate."""
    deep = text.count("[") + text.count("{") > max_depth
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    if not (deep or surrogates):
        return
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if surrogates:
                _check_string(item)
            continue
        if isinstance(item, dict):
            children: Any = item.items()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= max_depth:
            raise BoundedJSONError(f"JSON nested deeper than {max_depth} levels")
        for child in children:
            if isinstance(child, tuple):  # a (key, value) pair of an object
                if surrogates:
                    _check_string(child[0])
                child = child[1]
            if isinstance(child, (dict, list)) or (surrogates and isinstance(child, str)):
                stack.append((child, depth + 1))


def _check_string(s: str) -> None:
    if s.isascii():
        return
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BoundedJSONError(
            f"string holds a lone surrogate (\\u{ord(s[e.start]):04x}), which is not Unicode text"
        ) from None


def _number_reason(e: ValueError) -> str:
    text = str(e)
    if "integer string conversion" in text:
        return f"a number of more than {sys.get_int_max_str_digits()} digits"
    return text[:120]
