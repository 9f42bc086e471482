"""The dataset on disk (local path or any fsspec URL): shards, the sink's state per partition, the card.

Layout under `output_dir` (the contract its readers rely on is linksyn.common.dataset):
  README.md                                 dataset card (YAML header tells `datasets.load_dataset` where shards are)
  plots/disciplines.svg                     the card's plots
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
from typing import Any, Callable, Sequence

import fsspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from linksyn.common.dataset import (
    CARD,
    FORMAT_EXT,
    MANIFEST,
    PLOTS_DIR,
    STATE_DIR,
    parse_manifest,
    partition_root,
    read_manifests,
)
from linksyn.common.modes import mode_name
from linksyn.v1 import records_pb2

ROW_FIELDS: tuple[tuple[str, pa.DataType, Callable[[records_pb2.SynthQA], Any]], ...] = (
    ("id", pa.string(), lambda qa: qa.id),
    ("question", pa.string(), lambda qa: qa.question),
    ("answer", pa.string(), lambda qa: qa.answer),
    ("rationale", pa.string(), lambda qa: qa.rationale),
    ("knowledge_points", pa.list_(pa.string()), lambda qa: list(qa.kps)),
    ("discipline", pa.string(), lambda qa: qa.discipline),
    ("difficulty", pa.int32(), lambda qa: int(qa.difficulty)),
    ("source_seed_ids", pa.list_(pa.string()), lambda qa: list(qa.source_seed_ids)),
    ("path_id", pa.string(), lambda qa: qa.path_id),
    ("path_kps", pa.list_(pa.string()), lambda qa: list(qa.path_kps)),  # the walk's KPs (knowledge_points: the QA's)
    ("model", pa.string(), lambda qa: qa.models[0] if qa.models else ""),  # the generator
    ("models", pa.list_(pa.string()), lambda qa: list(qa.models)),  # the generator, then the refiner
    ("prompt_version", pa.string(), lambda qa: qa.prompt_version),
    ("mode", pa.string(), lambda qa: mode_name(qa.mode)),
    ("lang", pa.string(), lambda qa: qa.lang),
    ("prompt_tokens", pa.int32(), lambda qa: int(qa.prompt_tokens)),
    ("completion_tokens", pa.int32(), lambda qa: int(qa.completion_tokens)),
)
"""The columns of a dataset record: name, Parquet type, and how it is read off a SynthQA (JSONL rows have the same
keys)."""
ROW_SCHEMA = pa.schema([(name, dtype) for name, dtype, _ in ROW_FIELDS])
"""Columns of every dataset record (Parquet schema)."""


def dataset_row(qa: records_pb2.SynthQA) -> dict[str, Any]:
    """A SynthQA as a dataset row."""
    return {name: get(qa) for name, _, get in ROW_FIELDS}


def dataset_columns(qas: Sequence[records_pb2.SynthQA]) -> dict[str, list[Any]]:
    """SynthQA records as dataset columns (what shards are written from: a field at a time, not a row at a time)."""
    return {name: [get(qa) for qa in qas] for name, _, get in ROW_FIELDS}


def dataset_rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The rows of dataset columns."""
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]


def row_json(row: dict[str, Any]) -> str:
    """A dataset row as one line of JSON (a JSONL shard's line, a kept-QA record's value), without the newline:
    compact separators, non-ASCII as is (orjson: a tenth of json.dumps's time)."""
    return orjson.dumps(row).decode("utf-8")


def jsonl_bytes(columns: dict[str, list[Any]]) -> bytes:
    """JSON Lines of the rows of `columns`: `row_json` of each row, a newline after each (UTF-8)."""
    dumps = orjson.dumps
    return b"".join(dumps(row) + b"\n" for row in dataset_rows(columns))


def shard_name(partition: int, number: int) -> str:
    return f"part-p{partition:05d}-{number:05d}"


class DatasetStore:
    """Atomic file writes of one dataset and its sink state."""

    def __init__(self, output_dir: str, state_dir: str | None = None) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(output_dir)
        self.root = self.root.rstrip("/")
        self.output_dir = output_dir
        state = state_dir or f"{output_dir.rstrip('/')}/{STATE_DIR}"
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

    def write_shard(self, partition: int, number: int, columns: dict[str, list[Any]],
                    formats: Sequence[str]) -> dict[str, str]:
        """Write one shard (`dataset_columns`) in every format; returns format -> relative path."""
        paths = self.shard_paths(partition, number, formats)
        for fmt, rel in paths.items():
            if fmt == "jsonl":
                data = jsonl_bytes(columns)
            else:
                buf = io.BytesIO()
                pq.write_table(pa.table(columns, schema=ROW_SCHEMA), buf, compression="zstd")
                data = buf.getvalue()
            self._write(self.fs, f"{self.root}/{rel}", data)
        return paths

    def partition_root(self, partition: int) -> str:
        return partition_root(self.state_root, partition)

    def write_chunk(self, partition: int, number: int, arrays: dict[str, np.ndarray]) -> str:
        """Write one state chunk (npz) of `partition`; returns its file name."""
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        name = f"chunk-{number:05d}.npz"
        self._write(self.state_fs, f"{self.partition_root(partition)}/{name}", buf.getvalue())
        return name

    def write_manifest(self, partition: int, manifest: dict[str, Any]) -> None:
        data = json.dumps(manifest, sort_keys=True, indent=1).encode("utf-8")
        self._write(self.state_fs, f"{self.partition_root(partition)}/{MANIFEST}", data)

    def write_card(self, text: str, plots: dict[str, str] | None = None) -> None:
        """The card, after its plots (file name under plots/ -> SVG text), so the card never points at a missing one."""
        for name, svg in (plots or {}).items():
            self._write(self.fs, f"{self.root}/{PLOTS_DIR}/{name}", svg.encode("utf-8"))
        self._write(self.fs, f"{self.root}/{CARD}", text.encode("utf-8"))

    # -- reads ------------------------------------------------------------------------------------------------

    def read_manifest(self, partition: int) -> dict[str, Any] | None:
        path = f"{self.partition_root(partition)}/{MANIFEST}"
        if not self.state_fs.exists(path):
            return None
        with self.state_fs.open(path, "rb") as fh:
            return parse_manifest(fh.read(), path)

    def partitions(self) -> list[int]:
        """Partitions with state here (a manifest)."""
        return list(self.manifests())

    def manifests(self) -> dict[int, dict[str, Any]]:
        """Partition -> manifest, for every partition with state (the whole dataset, whichever replica wrote it)."""
        return read_manifests(self.state_fs, self.state_root)

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
