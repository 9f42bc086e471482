"""Difficulty grades: defined once, as the `Grade` enum of protos/linksyn/v1/records.proto; here their numbers,
names and checks for Python code.

A grade is a plain int on every record (protobuf enum fields are ints in Python): 0 = unknown, 1 primary school ..
5 graduate or competition. Target maps (sampler targets, probe reports) key grades by their decimal string.
"""

from __future__ import annotations

from typing import Annotated

from linksyn.v1.records_pb2 import Grade
from pydantic import Field

UNKNOWN: int = Grade.GRADE_UNSPECIFIED
"""A seed or path whose grade is not known (0)."""
GRADES: tuple[int, ...] = tuple(sorted(v for v in Grade.values() if v != UNKNOWN))
"""Every grade, easiest first: (1, 2, 3, 4, 5)."""
MIN_GRADE: int = GRADES[0]
MAX_GRADE: int = GRADES[-1]
GRADE_KEYS: tuple[str, ...] = tuple(str(g) for g in GRADES)
"""Grades as the keys of target and share maps: ("1", ..., "5")."""
GRADE_NAMES: dict[int, str] = {
    g: Grade.Name(g).removeprefix("GRADE_").replace("_", " ").lower() for g in GRADES  # type: ignore[arg-type]
}
"""Grade -> level name as prompts show it ("primary school" .. "graduate or competition")."""

GradeNumber = Annotated[int, Field(ge=MIN_GRADE, le=MAX_GRADE)]
"""A config field holding one grade (validated 1..5)."""


def is_grade(value: object) -> bool:
    """Whether `value` is one of GRADES (an int, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and MIN_GRADE <= value <= MAX_GRADE


def check_grade_keys(keys: object, what: str) -> None:
    """ValueError naming `what` if any key of a grade-keyed map is not one of GRADE_KEYS."""
    bad = sorted(set(map(str, keys)) - set(GRADE_KEYS))  # type: ignore[call-overload]
    if bad:
        raise ValueError(f"{what} keys must be grades {', '.join(map(repr, GRADE_KEYS))}, got {bad}")
