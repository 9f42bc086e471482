"""The dataset the sink writes, as a contract for its readers (`linksyn report`, the trainer, the near-duplicate
pass): the folder layout, the per-partition manifests and their totals. The sink (linksyn.sink.store) writes it and
defines the row columns (ROW_FIELDS there); nothing here writes.

Layout under the dataset folder (a local path or any fsspec URL):
  README.md                                 dataset card (YAML header tells `datasets.load_dataset` where shards are)
  plots/<name>.svg                          the card's plots (referenced relatively from README.md)
  data/parquet/part-p00003-00000.parquet    shard 0 of partition 3 (every format holds the same records)
  data/jsonl/part-p00003-00000.jsonl
and under the state folder (default `<dataset>/.sink-state`, sink.state_dir), one folder per input partition:
  partitions/00003/chunk-00000.npz          the decisions of flush 0 of partition 3
  partitions/00003/manifest.json            the partition's commit point: its shards and chunks, its totals
The dataset's totals are the sum of its partitions' (DatasetTotals.merge).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

FORMAT_EXT = {"jsonl": "jsonl", "parquet": "parquet"}
"""Shard format -> file extension."""

CARD = "README.md"
PLOTS_DIR = "plots"
"""The card's plots, beside it."""
STATE_DIR = ".sink-state"
"""The state folder's name inside the dataset folder when sink.state_dir is not set."""
MANIFEST = "manifest.json"


def shard_glob(fmt: str) -> str:
    """Every shard of format `fmt`, relative to the dataset folder (the card's data_files)."""
    return f"data/{fmt}/*.{FORMAT_EXT[fmt]}"


def partition_root(state_root: str, partition: int) -> str:
    """The state folder of one input partition."""
    return f"{state_root.rstrip('/')}/partitions/{partition:05d}"


@dataclass
class DatasetTotals:
    """What the durable dataset holds, and what was dropped on the way (persisted in each partition's manifest)."""

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

    @classmethod
    def of_manifests(cls, manifests: Mapping[int, Mapping[str, Any]]) -> "DatasetTotals":
        """The whole dataset's totals: the sum of its partitions'."""
        total = cls()
        for m in manifests.values():
            total.merge(cls.from_json(dict(m["totals"])))
        return total


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """A partition manifest's JSON; ValueError naming `where` if it is not one."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: the sink manifest is not valid JSON: {e}") from e
    if not isinstance(manifest, dict) or not {"shards", "totals"} <= set(manifest):
        raise ValueError(f"{where}: not a sink manifest (it lacks shards or totals)")
    return manifest


def read_manifests(fs: Any, state_root: str) -> dict[int, dict[str, Any]]:
    """Partition -> manifest of every partition with state under `state_root` (an fsspec filesystem's path)."""
    out = {}
    for path in fs.glob(f"{state_root.rstrip('/')}/partitions/*/{MANIFEST}"):
        partition = int(path.rstrip("/").split("/")[-2])
        with fs.open(path, "rb") as fh:
            out[partition] = parse_manifest(fh.read(), path)
    return dict(sorted(out.items()))
