"""Readers of evaluation sets for decontamination: the question texts of MMLU, CMMLU and GSM8K test files.

Formats (as published): MMLU `<subject>_test.csv`, no header, columns question, A, B, C, D, answer; CMMLU
`<subject>.csv` with header `,Question,A,B,C,D,Answer`; GSM8K JSONL of {question, answer}. Paths may be fsspec URLs.
"""

from __future__ import annotations

import csv
import io
import json

import fsspec
from linksyn.sink.config import EvalSetConfig


class EvalSetError(ValueError):
    """An evaluation set that is missing or not in its declared format."""


def _csv_files(path: str) -> list[str]:
    fs, root = fsspec.core.url_to_fs(path)
    if not fs.exists(root):
        raise EvalSetError(f"evaluation set folder {path!r} does not exist")
    files = sorted(fs.glob(root.rstrip("/") + "/**/*.csv")) if fs.isdir(root) else [root]
    if not files:
        raise EvalSetError(f"evaluation set folder {path!r} holds no .csv files")
    return [fs.unstrip_protocol(f) for f in files]


def read_mmlu(path: str) -> list[str]:
    """Questions of every headerless MMLU CSV under `path` (first column)."""
    out: list[str] = []
    for f in _csv_files(path):
        with fsspec.open(f, "r", encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.reader(fh)):
                if len(row) < 6:
                    raise EvalSetError(f"{f} row {i + 1}: MMLU rows have 6 columns (question, A-D, answer), got {len(row)}")
                out.append(row[0])
    return out


def read_cmmlu(path: str) -> list[str]:
    """Questions of every CMMLU CSV under `path` (column 'Question')."""
    out: list[str] = []
    for f in _csv_files(path):
        with fsspec.open(f, "r", encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if "Question" not in (reader.fieldnames or []):
                raise EvalSetError(f"{f}: CMMLU files have a 'Question' column, header is {reader.fieldnames}")
            out.extend(row["Question"] for row in reader)
    return out


def read_gsm8k(path: str) -> list[str]:
    """Questions of a GSM8K JSONL file."""
    out: list[str] = []
    try:
        with fsspec.open(path, "r", encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise EvalSetError(f"GSM8K file {path!r} does not exist") from None
    for i, line in enumerate(io.StringIO(text)):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line)["question"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise EvalSetError(f"{path} line {i + 1}: not a JSON object with 'question' ({e})") from None
    return out


READERS = {"mmlu": read_mmlu, "cmmlu": read_cmmlu, "gsm8k": read_gsm8k}


def read_eval_set(cfg: EvalSetConfig) -> list[str]:
    """The questions of one configured evaluation set."""
    return READERS[cfg.kind](cfg.path)
