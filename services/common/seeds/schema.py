"""The published JSON Schema of a seed: the canonical seed row that a JSONL seed file holds per line and that any
producer may write as JSON to the seeds topic (`linksyn schema seed`; schemas/seed.schema.json in the repository,
kept equal to this by tests/test_schemas.py).

It states what `rows.canonical_seed` accepts, field for field: a row valid under it becomes a Seed. (The reader
also takes a few things the schema leaves out, such as non-ASCII digits in a difficulty string.)
"""

from __future__ import annotations

from typing import Any

from linksyn.common.grades import GRADE_NAMES, MAX_GRADE, UNKNOWN
from linksyn.common.seeds.rows import CANONICAL_FIELDS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_TEXT = {"type": ["string", "number"], "pattern": r"\S"}
_OPTIONAL_TEXT = {"type": ["string", "number", "null"]}
_GRADES = ", ".join(f"{g} {name}" for g, name in GRADE_NAMES.items())


def seed_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a seed as JSON."""
    properties: dict[str, Any] = {
        "id": {**_OPTIONAL_TEXT, "description": "Seed id; absent or empty: a hash of question and answer, so the "
               "same pair sent twice keeps its id."},
        "question": {**_TEXT, "description": "The question (required, not blank)."},
        "answer": {**_TEXT, "description": "The answer (required, not blank). A GSM8K-style final line "
                   "'#### n' is also copied to meta.final_answer."},
        "subject": {**_OPTIONAL_TEXT, "description": "Subject label of the source dataset (MMLU subject, MATH type)."},
        "discipline": {**_OPTIONAL_TEXT, "description": "Discipline label, if the source has one."},
        "difficulty": {
            "description": f"Difficulty grade: {_GRADES}; {UNKNOWN}, null or absent = not known. An integer, a "
                           "digit string or 'Level k'.",
            "anyOf": [
                {"type": "integer", "minimum": UNKNOWN, "maximum": MAX_GRADE},
                {"type": "string", "pattern": rf"^(|\s*([Ll][Ee][Vv][Ee][Ll]\s*)?0*[0-{MAX_GRADE}]\s*)$"},
                {"type": "null"},
            ],
        },
        "source": {**_OPTIONAL_TEXT, "description": "Where it came from; absent: '<file>:<line>' for a seed file, "
                   "'<topic>:<partition>:<offset>' for a Kafka record."},
        "lang": {**_OPTIONAL_TEXT, "description": "Language code ('en', 'zh'); absent: guessed from the question."},
        "meta": {"type": ["object", "null"], "description": "Free-form metadata; values that are not strings are "
                 "kept JSON-encoded."},
    }
    if tuple(properties) != CANONICAL_FIELDS:  # one list of fields: rows.CANONICAL_FIELDS
        raise AssertionError(f"seed schema fields {tuple(properties)} != CANONICAL_FIELDS {CANONICAL_FIELDS}")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "linksyn seed",
        "description": "A seed question-answer pair: one line of a JSONL seed file, or the value of a record on the "
                       "linksyn.seeds topic (content-type application/json). Other fields are kept in meta. The "
                       "protobuf form is linksyn.v1.Seed (protos/linksyn/v1/records.proto).",
        "type": "object",
        "required": ["question", "answer"],
        "properties": properties,
        "additionalProperties": True,
        "examples": [
            {"question": "What is the boiling point of water at sea level, in degrees Celsius?", "answer": "100",
             "subject": "physics", "difficulty": 1},
            {"id": "gsm8k-17", "question": "Tom has 3 apples and buys 4 more. How many does he have?",
             "answer": "3 + 4 = 7\n#### 7", "source": "my-system", "lang": "en", "meta": {"split": "train"}},
        ],
    }
