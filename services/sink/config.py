"""Settings of the sink service (a section of LinksynConfig: `sink:` in YAML, `LINKSYN_SINK__*` in the env)."""

from __future__ import annotations

from typing import Literal

from linksyn.common.config import Section
from pydantic import Field


class EvalSetConfig(Section):
    """One evaluation set to decontaminate against."""

    kind: Literal["mmlu", "cmmlu", "gsm8k"]
    """Format: 'mmlu' (folder of headerless `<subject>_test.csv`: question, A-D, answer), 'cmmlu' (folder of CSV
    with header `,Question,A,B,C,D,Answer`), 'gsm8k' (a JSONL file of {question, answer})."""
    path: str
    """Folder (mmlu, cmmlu: every *.csv under it) or file (gsm8k) to read."""


class SinkConfig(Section):
    """The sink: exact and near-duplicate removal, decontamination, dataset shards and card."""

    output_dir: str = "dataset"
    """Dataset folder: a local path or any fsspec URL (s3://bucket/prefix, gs://..., memory://...)."""
    state_dir: str | None = None
    """Where dedup state and the shard manifest persist (local path or fsspec URL); None = `<output_dir>/.sink-state`."""
    formats: list[Literal["jsonl", "parquet"]] = ["parquet", "jsonl"]
    """Shard formats written (each shard in every format). The first is the dataset card's default config."""
    shard_records: int = Field(default=10_000, ge=1)
    """Records per shard: a shard is written as soon as this many kept records are pending."""
    flush_interval_s: float = Field(default=30.0, gt=0)
    """A partial shard is written when its oldest pending record is this old (bounds uncommitted work)."""
    near_dup_threshold: float = Field(default=0.8, gt=0, le=1)
    """Estimated Jaccard similarity of question word shingles above which a record is a near duplicate."""
    minhash_perm: int = Field(default=128, ge=16)
    """MinHash permutations (signature length)."""
    shingle_words: int = Field(default=3, ge=1)
    """Words per shingle for near-duplicate detection."""
    decontam_ngram: int = Field(default=13, ge=3)
    """Word n-gram length for decontamination (13 as in GPT-3); CJK characters count as words."""
    decontam_min_words: int = Field(default=8, ge=3)
    """An eval question shorter than `decontam_ngram` words but at least this long is matched as one whole n-gram."""
    eval_sets: list[EvalSetConfig] = []
    """Evaluation sets whose questions must not leak into the dataset."""
    dataset_name: str = "linksyn-synthetic-qa"
    """Name in the dataset card's title."""
    kept_topic: str | None = None
    """Also publish every kept row as JSON to this topic (e.g. "linksyn.kept-qa"; created with
    bus.topics.partitions partitions if absent), so other systems read the dataset as it grows: the value is the
    row's line in the JSONL shards (`linksyn schema kept-qa`), the key its id, the header content-type
    application/json. Rows are published when their shard is written, before the manifest commits it: each
    appears at least once (again after a crash between the two; the key tells repeats apart). None: off."""
