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
    """The sink: exact and near-duplicate removal, decontamination, dataset shards and card. State is kept per
    partition of synth-qa, so replicas share the work by partitions (docs/SCALE.md)."""

    output_dir: str = "dataset"
    """Dataset folder: a local path or any fsspec URL (s3://bucket/prefix, gs://..., memory://...)."""
    state_dir: str | None = None
    """Where each partition's dedup state chunks and manifest persist (local path or fsspec URL); None =
    `<output_dir>/.sink-state`. With several sink replicas it must be shared by all of them (object storage or a
    shared volume): a partition's state moves with the partition at a rebalance."""
    index_dir: str | None = None
    """Local folder of the on-disk exact-duplicate indexes (RocksDB, one per partition; a cache of the state chunks,
    rebuilt from them when missing or behind). None = `<state_dir>/index` when the state folder is local, else a
    folder under the system's temporary directory (then every start rebuilds the indexes from the chunks). On
    Kubernetes: the replica's own volume."""
    index_cache_mb: int = Field(default=64, ge=1)
    """RocksDB block cache shared by the indexes of one replica (MiB)."""
    index_write_buffer_mb: int = Field(default=64, ge=2)
    """RocksDB memtable budget shared by the indexes of one replica (MiB)."""
    formats: list[Literal["jsonl", "parquet"]] = ["parquet", "jsonl"]
    """Shard formats written (each shard in every format). The first is the dataset card's default config."""
    shard_records: int = Field(default=10_000, ge=1)
    """Records per shard: a partition's shard is written as soon as this many of its kept records are pending."""
    flush_interval_s: float = Field(default=30.0, gt=0)
    """A partition's partial shard is written when its oldest pending record is this old (bounds uncommitted work);
    the dataset card is rewritten at most this often, and at shutdown."""
    near_dup_threshold: float = Field(default=0.8, gt=0, le=1)
    """Estimated Jaccard similarity of question word shingles above which a record is a near duplicate."""
    near_dup_window: int = Field(default=40_000, ge=0)
    """Kept records per partition that a new record is checked against for near duplicates (the most recent ones;
    0: no near-duplicate check in the stream). Memory: about 300 bytes per record per partition held. Near duplicates
    further apart, or in other partitions, are removed by `linksyn near-dups` over the finished dataset."""
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
