"""The published JSON Schemas (`linksyn schema NAME`, schemas/NAME.schema.json): the files in the repository are what
the code publishes, and each schema says what the code really accepts or writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from linksyn.cli import SCHEMAS, app, schema_document
from linksyn.common.modes import MODE_NAMES
from linksyn.common.seeds.rows import RowError, canonical_seed
from linksyn.sink.store import ROW_SCHEMA, dataset_row, row_json
from linksyn.v1 import records_pb2
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_the_repository_files_are_what_linksyn_schema_prints(name: str):
    path = REPO / "schemas" / f"{name}.schema.json"
    assert path.is_file(), f"{path} is missing: run `linksyn schema {name} > schemas/{name}.schema.json`"
    assert path.read_text(encoding="utf-8") == schema_document(name), (
        f"{path} is stale: run `linksyn schema {name} > schemas/{name}.schema.json`"
    )
    Draft202012Validator.check_schema(json.loads(schema_document(name)))
    result = CliRunner().invoke(app, ["schema", name])
    assert result.exit_code == 0 and result.output == schema_document(name)


def test_linksyn_schema_lists_the_schemas_and_refuses_unknown_names():
    runner = CliRunner()
    listing = runner.invoke(app, ["schema"])
    assert listing.exit_code == 0 and all(name in listing.output for name in SCHEMAS)
    unknown = runner.invoke(app, ["schema", "sede"])
    assert unknown.exit_code == 2 and "unknown schema 'sede'; schemas: seed, kept-qa" in unknown.output


SEED_ROWS = [
    {"question": "q", "answer": "a"},
    {"question": "q", "answer": "a", "id": "s1", "subject": "physics", "discipline": None, "source": "crm",
     "lang": "en", "meta": {"k": [1]}, "anything": {"else": True}},
    {"question": 12, "answer": 3.5},
    {"question": "q", "answer": "a", "difficulty": 5},
    {"question": "q", "answer": "a", "difficulty": 3.0},
    {"question": "q", "answer": "a", "difficulty": "4"},
    {"question": "q", "answer": "a", "difficulty": " Level 2 "},
    {"question": "q", "answer": "a", "difficulty": ""},
    {"question": "q", "answer": "a", "difficulty": None},
    {"question": "q", "answer": "a", "meta": None},
    # refused by both:
    {"question": "q"},
    {"answer": "a"},
    {"question": "   ", "answer": "a"},
    {"question": "q", "answer": ""},
    {"question": None, "answer": "a"},
    {"question": True, "answer": "a"},
    {"question": ["q"], "answer": "a"},
    {"question": "q", "answer": "a", "difficulty": 6},
    {"question": "q", "answer": "a", "difficulty": -1},
    {"question": "q", "answer": "a", "difficulty": 2.5},
    {"question": "q", "answer": "a", "difficulty": True},
    {"question": "q", "answer": "a", "difficulty": "Level 7"},
    {"question": "q", "answer": "a", "difficulty": "hard"},
    {"question": "q", "answer": "a", "difficulty": "  "},
    {"question": "q", "answer": "a", "id": True},
    {"question": "q", "answer": "a", "lang": ["en"]},
    {"question": "q", "answer": "a", "meta": "x"},
    ["q", "a"],
    "q",
]


@pytest.mark.parametrize("row", SEED_ROWS, ids=lambda r: json.dumps(r)[:60])
def test_a_seed_valid_under_the_schema_is_exactly_a_row_the_reader_accepts(row):
    validator = Draft202012Validator(json.loads(schema_document("seed")))
    try:
        canonical_seed(row, "test")
        accepted = True
    except RowError:
        accepted = False
    assert validator.is_valid(row) == accepted, list(validator.iter_errors(row))


def test_the_seed_schema_examples_are_valid_seeds():
    doc = json.loads(schema_document("seed"))
    for example in doc["examples"]:
        Draft202012Validator(doc).validate(example)
        canonical_seed(example, "example")


def test_a_dataset_row_is_valid_under_the_kept_qa_schema_in_every_mode():
    doc = json.loads(schema_document("kept-qa"))
    validator = Draft202012Validator(doc)
    assert doc["required"] == ROW_SCHEMA.names == list(doc["properties"])
    for mode in [0, *MODE_NAMES]:
        qa = records_pb2.SynthQA(id="ab" * 16, question="q", answer="a", kps=["x"], difficulty=3, models=["m"],
                                 source_seed_ids=["s"], mode=mode, lang="en")
        row = json.loads(row_json(dataset_row(qa)))
        assert list(row) == doc["required"]
        validator.validate(row)
    assert not validator.is_valid({**row, "difficulty": 6})
    assert not validator.is_valid({**row, "mode": "sideways"})
    assert not validator.is_valid({k: v for k, v in row.items() if k != "path_id"})
