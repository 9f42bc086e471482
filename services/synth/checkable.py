"""Checkable answers: a final number or a choice letter that two models' answers can be compared on (pure).

Free-form answers are not checkable; for those the refiner's answer simply replaces the generator's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_NUM = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?"
_GSM = re.compile(r"####\s*\$?\s*(" + _NUM + r")")
_BOXED = re.compile(r"\\boxed\{\s*\$?\s*(" + _NUM + r")\s*\}")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:|=)\s*:?\s*\(?\$?\s*(" + _NUM + r"|[A-E])\)?(?![\w])", re.IGNORECASE)
_LEADING_LETTER = re.compile(r"^\s*\(?([A-E])\)?(?:[.):]|\s*$)")
_ANY_NUM = re.compile(_NUM)


@dataclass(frozen=True)
class CheckableAnswer:
    """kind 'number' (value as float) or 'choice' (letter)."""

    kind: str
    value: float | str


def _number(s: str) -> float | None:
    s = s.replace(",", "")
    try:
        if "/" in s:
            a, b = s.split("/")
            return float(a) / float(b) if float(b) else None
        return float(s)
    except ValueError:
        return None


def _from_token(tok: str) -> CheckableAnswer | None:
    if len(tok) == 1 and tok.upper() in "ABCDE":
        return CheckableAnswer("choice", tok.upper())
    n = _number(tok)
    return CheckableAnswer("number", n) if n is not None else None


def extract_checkable(answer: str, max_words_for_bare_number: int = 6) -> CheckableAnswer | None:
    """The final number or choice letter of an answer, or None if it is free-form.

    Recognised: GSM8K `#### 42`, `\\boxed{42}`, "the answer is 42 / (B)", an answer that starts with a choice letter
    ("B", "(B)", "B. ..."), and a short answer (a few words) holding exactly one number ("42 apples").
    """
    for pattern in (_GSM, _BOXED):
        m = pattern.findall(answer)
        if m:
            return _from_token(m[-1])
    m = _ANSWER_IS.findall(answer)
    if m:
        return _from_token(m[-1])
    m1 = _LEADING_LETTER.match(answer)
    if m1:
        return CheckableAnswer("choice", m1.group(1))
    if len(answer.split()) <= max_words_for_bare_number:
        nums = _ANY_NUM.findall(answer)
        if len(nums) == 1:
            return _from_token(nums[0])
    return None


def answers_agree(a: CheckableAnswer, b: CheckableAnswer | None, rel_tol: float = 1e-6) -> bool:
    """Same kind and same value (numbers within a relative tolerance)."""
    if b is None or a.kind != b.kind:
        return False
    if a.kind == "number":
        return math.isclose(float(a.value), float(b.value), rel_tol=rel_tol, abs_tol=1e-9)
    return a.value == b.value
