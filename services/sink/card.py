"""The dataset card (README.md) from the sink's running totals (pure).

The YAML header's `configs` tell `datasets.load_dataset(DIR)` which files make the train split: the shards of the
first configured format. (datasets picks one file reader per repository, so the other formats' shards, holding the
same records, are listed in the card body for readers of their own, e.g. `load_dataset("json", data_files=...)`.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import yaml
from linksyn.sink.store import FORMAT_EXT, ROW_SCHEMA


@dataclass
class DatasetTotals:
    """What the durable dataset holds, and what was dropped on the way (persisted in the manifest)."""

    records: int = 0
    shards: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    disciplines: Counter = field(default_factory=Counter)
    difficulty: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    langs: Counter = field(default_factory=Counter)
    models: Counter = field(default_factory=Counter)
    prompt_versions: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)

    def add_columns(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Count records given as dataset columns (linksyn.sink.store.dataset_columns)."""
        self.records += len(columns["id"])
        self.prompt_tokens += sum(columns["prompt_tokens"])
        self.completion_tokens += sum(columns["completion_tokens"])
        self.disciplines.update(v or "unknown" for v in columns["discipline"])
        self.difficulty.update(str(v) for v in columns["difficulty"])
        self.modes.update(v or "unknown" for v in columns["mode"])
        self.langs.update(v or "unknown" for v in columns["lang"])
        for models in columns["models"]:
            self.models.update(models)
        self.prompt_versions.update(v or "unknown" for v in columns["prompt_version"])

    def merge(self, other: "DatasetTotals") -> None:
        """Add another part's totals (the dataset's are the sum of its partitions')."""
        for k, v in other.__dict__.items():
            if isinstance(v, Counter):
                getattr(self, k).update(v)
            else:
                setattr(self, k, getattr(self, k) + v)

    def to_json(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Counter) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DatasetTotals":
        t = cls()
        for k, v in data.items():
            if not hasattr(t, k):
                raise ValueError(f"unknown dataset total {k!r} in manifest")
            setattr(t, k, Counter(v) if isinstance(getattr(t, k), Counter) else v)
        return t


def _table(title: str, counts: Counter, key_sort: bool = False) -> str:
    if not counts:
        return f"### {title}\n\n(none)\n"
    items = sorted(counts.items()) if key_sort else counts.most_common()
    total = sum(counts.values())
    lines = [f"### {title}", "", "| value | records | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {v} | {v / total:.1%} |" for k, v in items]
    return "\n".join(lines) + "\n"


def render_card(totals: DatasetTotals, formats: Sequence[str], name: str) -> str:
    """README.md text: YAML header (configs, data_files) and the statistics."""
    globs = {fmt: f"data/{fmt}/*.{FORMAT_EXT[fmt]}" for fmt in formats}
    configs = [{"config_name": "default", "data_files": [{"split": "train", "path": globs[formats[0]]}]}]
    header = yaml.safe_dump({"configs": configs, "task_categories": ["question-answering"]}, sort_keys=False)
    columns = ", ".join(f"`{n}`" for n in ROW_SCHEMA.names)
    body = [
        f"# {name}",
        "",
        "Synthetic question-answer pairs made by linksyn (LinkSyn multi-seed synthesis and BoostQA multi-grade, "
        "hard-question and refinement modes), deduplicated (exact and MinHash near-duplicates) and decontaminated "
        "against evaluation sets. Each record's `source_seed_ids` and `path_id` give its lineage.",
        "",
        f"Columns: {columns}.",
        "",
        "Files (every format holds the same records): " + ", ".join(f"`{g}`" for g in globs.values()) + ".",
        "",
        "## Summary",
        "",
        f"- records: {totals.records}",
        f"- shards: {totals.shards} (formats: {', '.join(formats)})",
        f"- prompt tokens: {totals.prompt_tokens}",
        f"- completion tokens: {totals.completion_tokens}",
        f"- dropped: {sum(totals.dropped.values())}",
        "",
        _table("Disciplines", totals.disciplines),
        _table("Difficulty (1 primary .. 5 graduate)", totals.difficulty, key_sort=True),
        _table("Modes", totals.modes),
        _table("Languages", totals.langs),
        _table("Models", totals.models),
        _table("Prompt versions", totals.prompt_versions, key_sort=True),
        _table("Dropped by reason", totals.dropped),
    ]
    return f"---\n{header}---\n\n" + "\n".join(body)
