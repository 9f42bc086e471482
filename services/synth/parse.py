"""Parsing and validation of model replies (pure).

Models wrap JSON in prose or ``` fences and sometimes add a second object; we take the first complete JSON object
in the reply and validate it field by field, with errors that name the field and show the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from linksyn.common.grades import MAX_GRADE, MIN_GRADE, is_grade
from linksyn.common.llm.reply import ReplyError, first_json_object


def _clip(value: Any, n: int = 120) -> str:
    """repr of a value, cut to n characters."""
    s = repr(value)
    return s if len(s) <= n else s[:n] + "..."


def _string(obj: dict[str, Any], key: str, required: bool) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise ReplyError(f"field {key!r} is missing; got keys {sorted(obj)}")
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # a bare numeric answer is a fine answer
    if not isinstance(value, str):
        raise ReplyError(f"field {key!r} must be a string, got {type(value).__name__} {_clip(value)}")
    value = value.strip()
    if required and not value:
        raise ReplyError(f"field {key!r} is empty")
    return value


def _difficulty(obj: dict[str, Any], required: bool) -> int:
    value = obj.get("difficulty")
    if value is None:
        if required:
            raise ReplyError(f"field 'difficulty' is missing; got keys {sorted(obj)}")
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not is_grade(value):
        raise ReplyError(f"field 'difficulty' must be an integer {MIN_GRADE}..{MAX_GRADE}, got {_clip(value)}")
    return value


@dataclass
class GeneratedQA:
    """A validated generation reply. Optional fields the model left out are empty / 0 (the caller fills them)."""

    question: str
    answer: str
    rationale: str = ""
    knowledge_points: list[str] = field(default_factory=list)
    discipline: str = ""
    difficulty: int = 0


def parse_generated_qa(text: str) -> GeneratedQA:
    """Validate a generation reply: question and answer are required non-empty strings; rationale, discipline a
    string, knowledge_points a list of non-empty strings, difficulty an integer 1..5, when present."""
    obj = first_json_object(text)
    kps_raw = obj.get("knowledge_points")
    kps: list[str] = []
    if kps_raw is not None:
        if isinstance(kps_raw, str):
            kps_raw = [kps_raw]
        if not isinstance(kps_raw, list) or not all(isinstance(k, str) for k in kps_raw):
            raise ReplyError(f"field 'knowledge_points' must be a list of strings, got {_clip(kps_raw)}")
        kps = [k.strip() for k in kps_raw if k.strip()][:8]
    return GeneratedQA(
        question=_string(obj, "question", required=True),
        answer=_string(obj, "answer", required=True),
        rationale=_string(obj, "rationale", required=False),
        knowledge_points=kps,
        discipline=_string(obj, "discipline", required=False),
        difficulty=_difficulty(obj, required=False),
    )


def parse_rating(text: str) -> int:
    """A difficulty-rating reply -> grade 1..5."""
    return _difficulty(first_json_object(text), required=True)


@dataclass
class RefinedAnswer:
    """A validated refinement reply."""

    answer: str
    rationale: str = ""


def parse_refined_answer(text: str) -> RefinedAnswer:
    """A refinement reply: answer required, rationale optional."""
    obj = first_json_object(text)
    return RefinedAnswer(answer=_string(obj, "answer", required=True), rationale=_string(obj, "rationale", False))
