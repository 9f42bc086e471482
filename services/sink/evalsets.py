"""Readers of evaluation sets for decontamination: the question texts of MMLU, CMMLU and GSM8K test files.

Formats (as published): MMLU and CMMLU folders of CSV files (read by linksyn.common.benchmarks, as the trainer's
probes read them); GSM8K JSONL of {question, answer}. Paths may be fsspec URLs.
"""

from __future__ import annotations

import io
import json

import fsspec
from linksyn.common.benchmarks import BenchmarkFormatError, Layout, read_mc_benchmark
from linksyn.sink.config import EvalSetConfig


class EvalSetError(ValueError):
    """An evaluation set that is missing or not in its declared format."""


def read_mmlu(path: str) -> list[str]:
    """Questions of every MMLU-layout CSV under `path` (linksyn.common.benchmarks)."""
    return _questions(path, "mmlu")


def read_cmmlu(path: str) -> list[str]:
    """Questions of every CMMLU-layout CSV under `path` (linksyn.common.benchmarks)."""
    return _questions(path, "cmmlu")


def _questions(path: str, layout: Layout) -> list[str]:
    try:
        return [q.question for q in read_mc_benchmark(path, layout)]
    except BenchmarkFormatError as e:
        raise EvalSetError(f"evaluation set: {e}") from None


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
