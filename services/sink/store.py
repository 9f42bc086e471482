"""The dataset on disk (local path or any fsspec URL): shards, the sink's state per partition, the card.

Layout under `output_dir`:
  README.md                                 dataset card (YAML header tells `datasets.load_dataset` where shards are)
  data/parquet/part-p00003-00000.parquet    shard 0 of partition 3 (every format holds the same records)
  data/jsonl/part-p00003-00000.jsonl
and under the state folder (default `output_dir/.sink-state`), one folder per partition of the input topic:
  partitions/00003/chunk-00000.npz          the decisions of flush 0 of partition 3 (question hashes, ids, outcomes,
                                            and the LSH keys and short signatures of the kept records)
  partitions/00003/manifest.json            the partition's commit point: shards and chunks that count, its totals

The state folder must be reachable by every sink replica (object storage, or a volume they share) when there are
several: a partition moves to another replica at a rebalance, and its new owner reads its state here.

Every file is written under a temporary name and then renamed (on object stores an upload only appears when
complete), and the manifest is written last: after a crash, files the manifest does not list are ignored and the
next flush, which reuses their numbers, overwrites them.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any, Sequence

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from linksyn.common.modes import mode_name
from linksyn.v1 import records_pb2

ROW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("rationale", pa.string()),
        ("knowledge_points", pa.list_(pa.string())),
        ("discipline", pa.string()),
        ("difficulty", pa.int32()),
        ("source_seed_ids", pa.list_(pa.string())),
        ("path_id", pa.string()),
        ("model", pa.string()),
        ("models", pa.list_(pa.string())),
        ("prompt_version", pa.string()),
        ("mode", pa.string()),
        ("lang", pa.string()),
        ("prompt_tokens", pa.int32()),
        ("completion_tokens", pa.int32()),
    ]
)
"""Columns of every dataset record (Parquet schema; JSONL rows have the same keys)."""

FORMAT_EXT = {"jsonl": "jsonl", "parquet": "parquet"}


def dataset_row(qa: records_pb2.SynthQA) -> dict[str, Any]:
    """A SynthQA as a dataset row (`model` is the generator; `models` adds the refiner)."""
    return {
        "id": qa.id,
        "question": qa.question,
        "answer": qa.answer,
        "rationale": qa.rationale,
        "knowledge_points": list(qa.kps),
        "discipline": qa.discipline,
        "difficulty": int(qa.difficulty),
        "source_seed_ids": list(qa.source_seed_ids),
        "path_id": qa.path_id,
        "model": qa.models[0] if qa.models else "",
        "models": list(qa.models),
        "prompt_version": qa.prompt_version,
        "mode": mode_name(qa.mode),
        "lang": qa.lang,
        "prompt_tokens": int(qa.prompt_tokens),
        "completion_tokens": int(qa.completion_tokens),
    }


def row_json(row: dict[str, Any]) -> str:
    """A dataset row as one line of JSON (a JSONL shard's line, a kept-QA record's value), without the newline."""
    return json.dumps(row, ensure_ascii=False)


def shard_name(partition: int, number: int) -> str:
    return f"part-p{partition:05d}-{number:05d}"


class DatasetStore:
    """Atomic file writes of one dataset and its sink state."""

    def __init__(self, output_dir: str, state_dir: str | None = None) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(output_dir)
        self.root = self.root.rstrip("/")
        self.output_dir = output_dir
        state = state_dir or output_dir.rstrip("/") + "/.sink-state"
        self.state_fs, self.state_root = fsspec.core.url_to_fs(state)
        self.state_root = self.state_root.rstrip("/")

    # -- atomic writes ----------------------------------------------------------------------------------------

    @staticmethod
    def _write(fs: Any, path: str, data: bytes) -> None:
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{path.rsplit('/', 1)[1]}"
        with fs.open(tmp, "wb") as fh:
            fh.write(data)
        fs.mv(tmp, path)

    def shard_paths(self, partition: int, number: int, formats: Sequence[str]) -> dict[str, str]:
        """Format -> path (relative to output_dir) of shard `number` of `partition`."""
        return {f: f"data/{f}/{shard_name(partition, number)}.{FORMAT_EXT[f]}" for f in formats}

    def write_shard(self, partition: int, number: int, rows: list[dict[str, Any]],
                    formats: Sequence[str]) -> dict[str, str]:
        """Write one shard in every format; returns format -> relative path."""
        paths = self.shard_paths(partition, number, formats)
        for fmt, rel in paths.items():
            if fmt == "jsonl":
                data = "".join(row_json(r) + "\n" for r in rows).encode("utf-8")
            else:
                buf = io.BytesIO()
                pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), buf, compression="zstd")
                data = buf.getvalue()
            self._write(self.fs, f"{self.root}/{rel}", data)
        return paths

    def partition_root(self, partition: int) -> str:
        return f"{self.state_root}/partitions/{partition:05d}"

    def write_chunk(self, partition: int, number: int, arrays: dict[str, np.ndarray]) -> str:
        """Write one state chunk (npz) of `partition`; returns its file name."""
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        name = f"chunk-{number:05d}.npz"
        self._write(self.state_fs, f"{self.partition_root(partition)}/{name}", buf.getvalue())
        return name

    def write_manifest(self, partition: int, manifest: dict[str, Any]) -> None:
        data = json.dumps(manifest, sort_keys=True, indent=1).encode("utf-8")
        self._write(self.state_fs, f"{self.partition_root(partition)}/manifest.json", data)

    def write_card(self, text: str) -> None:
        self._write(self.fs, f"{self.root}/README.md", text.encode("utf-8"))

    # -- reads ------------------------------------------------------------------------------------------------

    def read_manifest(self, partition: int) -> dict[str, Any] | None:
        path = f"{self.partition_root(partition)}/manifest.json"
        if not self.state_fs.exists(path):
            return None
        with self.state_fs.open(path, "rb") as fh:
            return json.loads(fh.read())

    def partitions(self) -> list[int]:
        """Partitions with state here (a manifest)."""
        found = self.state_fs.glob(f"{self.state_root}/partitions/*/manifest.json")
        return sorted(int(p.rstrip("/").split("/")[-2]) for p in found)

    def manifests(self) -> dict[int, dict[str, Any]]:
        """Partition -> manifest, for every partition with state (the whole dataset, whichever replica wrote it)."""
        out = {}
        for p in self.partitions():
            m = self.read_manifest(p)
            if m is not None:
                out[p] = m
        return out

    def read_chunk(self, partition: int, name: str) -> dict[str, np.ndarray]:
        with self.state_fs.open(f"{self.partition_root(partition)}/{name}", "rb") as fh:
            with np.load(io.BytesIO(fh.read())) as z:
                return {k: z[k] for k in z.files}

    def decisions(self) -> dict[str, list[int]]:
        """The 64-bit ids of every QA the durable state decided on, and of those kept (every partition's chunks)."""
        from linksyn.sink.screen import KEPT

        decided: list[int] = []
        kept: list[int] = []
        for p, manifest in sorted(self.manifests().items()):
            for name in manifest["chunks"]:
                chunk = self.read_chunk(p, name)
                decided += chunk["ids"].tolist()
                kept += chunk["ids"][chunk["outcome"] == KEPT].tolist()
        return {"decided": decided, "kept": kept}
