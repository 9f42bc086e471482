"""Reading model replies: the first JSON object in a reply, whatever the model wrapped around it.

Models wrap JSON in prose or ``` fences and sometimes add a second object; constrained engines do not, but a reply
cut off by its token budget is never valid. Strings may hold raw newlines (llama.cpp's grammar lets them through),
so decoding is not strict about control characters.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


class ReplyError(ValueError):
    """A reply that is not what was asked for; the message says what is wrong and quotes the value."""


def first_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in `text` (inside ``` fences first, then anywhere), or ReplyError."""
    decoder = json.JSONDecoder(strict=False)
    for chunk in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        start = chunk.find("{")
        while start != -1:
            try:
                value, _ = decoder.raw_decode(chunk, start)
            except json.JSONDecodeError:
                start = chunk.find("{", start + 1)
                continue
            if isinstance(value, dict):
                return value
            start = chunk.find("{", start + 1)
    preview = text.strip().replace("\n", " ")
    preview = preview[:120] + ("..." if len(preview) > 120 else "")
    raise ReplyError(f"reply holds no JSON object: {preview!r}")
