"""Multiple-choice benchmark files as their authors publish them, read in one place: by the trainer's probes (the
questions with their choices and answer) and by the sink's decontamination (the question texts).

Layouts: MMLU, a folder of headerless CSV files `question,A,B,C,D,answer-letter`, the subject in the file name
(`college_physics_test.csv`); CMMLU, a folder of CSV files with the header `,Question,A,B,C,D,Answer`, the file name
being the subject. Paths may be local or any fsspec URL; a folder is searched recursively for *.csv. (The seed
readers, linksyn.common.seeds, read the same layouts as seeds: row by row, rejecting bad rows instead of failing.)
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Literal

import fsspec

CHOICE_LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
"""The choice letters of every multiple-choice layout linksyn reads."""

Layout = Literal["mmlu", "cmmlu"]

_MMLU_SPLIT_SUFFIX = re.compile(r"_(dev|val|test|train)$")


class BenchmarkFormatError(ValueError):
    """A benchmark path that is missing, empty, or not in its declared layout (the message names file and row)."""


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice question as the file holds it."""

    subject: str
    question: str
    choices: tuple[str, ...]
    answer: int
    """Index of the correct choice (into `choices`)."""


def mmlu_subject(file_stem: str) -> str:
    """MMLU's subject from its file name: 'college_physics_dev' -> 'college_physics'."""
    return _MMLU_SPLIT_SUFFIX.sub("", file_stem)


def csv_files(path: str) -> list[str]:
    """The .csv files of a benchmark: `path` itself, or every one under the folder `path`, sorted."""
    fs, root = fsspec.core.url_to_fs(str(path))
    if not fs.exists(root):
        raise BenchmarkFormatError(f"benchmark path {str(path)!r} does not exist")
    files = sorted(fs.glob(root.rstrip("/") + "/**/*.csv")) if fs.isdir(root) else [root]
    if not files:
        raise BenchmarkFormatError(f"benchmark folder {str(path)!r} holds no .csv files")
    return [fs.unstrip_protocol(f) for f in files]


def read_mc_benchmark(path: str, layout: Layout, max_per_subject: int | None = None) -> list[MCItem]:
    """Every question of the benchmark at `path` in `layout` (at most `max_per_subject` per file), in file order."""
    out: list[MCItem] = []
    for f in csv_files(path):
        stem = f.rsplit("/", 1)[-1].removesuffix(".csv")
        with fsspec.open(f, "r", encoding="utf-8", newline="") as fh:
            if layout == "mmlu":
                out += _mmlu_rows(f, csv.reader(fh), mmlu_subject(stem), max_per_subject)
            else:
                out += _cmmlu_rows(f, csv.DictReader(fh), stem, max_per_subject)
    return out


def _mmlu_rows(f: str, rows: "csv._reader", subject: str, limit: int | None) -> list[MCItem]:
    out = []
    for i, row in enumerate(rows):
        if limit is not None and i >= limit:
            break
        if len(row) != 6 or row[5].strip() not in CHOICE_LETTERS:
            raise BenchmarkFormatError(
                f"{f}:{i + 1}: MMLU rows have 6 columns (question, A-D, answer letter), got {len(row)} "
                f"ending in {row[-1][:20]!r}" if row else f"{f}:{i + 1}: an empty MMLU row"
            )
        out.append(MCItem(subject, row[0], tuple(row[1:5]), CHOICE_LETTERS.index(row[5].strip())))
    return out


def _cmmlu_rows(f: str, rows: csv.DictReader, subject: str, limit: int | None) -> list[MCItem]:
    if not {"Question", *CHOICE_LETTERS, "Answer"} <= set(rows.fieldnames or []):
        raise BenchmarkFormatError(f"{f}: CMMLU files have the header ,Question,A,B,C,D,Answer; got {rows.fieldnames}")
    out = []
    for i, row in enumerate(rows):
        if limit is not None and i >= limit:
            break
        answer = (row.get("Answer") or "").strip()
        if answer not in CHOICE_LETTERS or not row.get("Question"):
            raise BenchmarkFormatError(f"{f}:{i + 2}: expected a Question and an Answer A-D, got {row!r:.200}")
        out.append(MCItem(subject, row["Question"], tuple(row[k] for k in CHOICE_LETTERS),
                          CHOICE_LETTERS.index(answer)))
    return out
