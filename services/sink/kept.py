"""Kept QA for downstream systems: the dataset row as a JSON record on a topic (`sink.kept_topic`, off by default),
and its published JSON Schema (`linksyn schema kept-qa`; schemas/kept-qa.schema.json in the repository).

A record's value is exactly the row's line in the JSONL shards (`store.row_json(store.dataset_row(qa))`), its key
the row id, its `content-type` header application/json. The schema is derived from the dataset's columns
(`store.ROW_SCHEMA`), so the files, the topic and the schema cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa
from linksyn.common.bus.base import OutRecord
from linksyn.common.grades import GRADE_NAMES, MAX_GRADE, UNKNOWN
from linksyn.common.modes import MODES
from linksyn.common.seeds.schema import JSON_SCHEMA_DIALECT
from linksyn.sink.store import ROW_SCHEMA, row_json

CONTENT_TYPE = (("content-type", b"application/json"),)
"""Headers of every kept-QA record."""

COLUMN_DESCRIPTIONS: dict[str, str] = {
    "id": "QA id: a hash of question and answer (hex); the record key. The same QA is never kept twice.",
    "question": "The synthesized question.",
    "answer": "Its answer.",
    "rationale": "The generator's reasoning, empty if none.",
    "knowledge_points": "The QA's own knowledge points (the generator's, else those of its walk).",
    "discipline": "Discipline (the taxonomy's top level).",
    "difficulty": "Difficulty grade: " + ", ".join(f"{g} {n}" for g, n in GRADE_NAMES.items())
                  + f"; {UNKNOWN} not known.",
    "source_seed_ids": "Ids of the seeds it was synthesized from.",
    "path_id": "Id of the walk path (linksyn.paths) it came from.",
    "path_kps": "Knowledge points of the walk it was synthesized from (its lineage with source_seed_ids).",
    "model": "The generator model.",
    "models": "The generator model, then the refiner model if any.",
    "prompt_version": "Prompt file version of the synthesis.",
    "mode": "Synthesis mode ('' when the path named none).",
    "lang": "Language code ('en', 'zh').",
    "prompt_tokens": "Prompt tokens the synthesis used.",
    "completion_tokens": "Completion tokens the synthesis used.",
}
"""What each dataset column means (one entry per column of ROW_SCHEMA)."""


def _json_type(t: pa.DataType) -> dict[str, Any]:
    if pa.types.is_string(t):
        return {"type": "string"}
    if pa.types.is_integer(t):
        return {"type": "integer"}
    if pa.types.is_list(t):
        return {"type": "array", "items": _json_type(t.value_type)}
    raise TypeError(f"no JSON Schema type for the dataset column type {t}")


def kept_qa_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a dataset row: a line of the JSONL shards, a record of sink.kept_topic."""
    missing = set(ROW_SCHEMA.names) ^ set(COLUMN_DESCRIPTIONS)
    if missing:
        raise AssertionError(f"COLUMN_DESCRIPTIONS and ROW_SCHEMA differ in {sorted(missing)}")
    properties = {f.name: {**_json_type(f.type), "description": COLUMN_DESCRIPTIONS[f.name]} for f in ROW_SCHEMA}
    properties["difficulty"].update(minimum=UNKNOWN, maximum=MAX_GRADE)
    properties["mode"]["enum"] = ["", *MODES]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "linksyn kept QA",
        "description": "A synthesized QA the sink kept (deduplicated, decontaminated): one line of the dataset's "
                       "JSONL shards, and the value of a record on sink.kept_topic (key: id; content-type "
                       "application/json). The Parquet shards hold the same columns.",
        "type": "object",
        "required": list(ROW_SCHEMA.names),
        "properties": properties,
    }


def kept_records(rows: Sequence[dict[str, Any]], topic: str) -> list[OutRecord]:
    """The kept-QA records of dataset rows: JSON value, key = row id, content-type header."""
    return [
        OutRecord(topic, row_json(r).encode("utf-8"), key=r["id"].encode("utf-8"), headers=CONTENT_TYPE) for r in rows
    ]
