"""The dataset on disk (local path or any fsspec URL): shards, the sink's state chunks, the manifest, the card.

Layout under `output_dir`:
  README.md                         dataset card (YAML header tells `datasets.load_dataset` where the shards are)
  data/parquet/part-00000.parquet   shard 0 (every format holds the same records)
  data/jsonl/part-00000.jsonl
and under the state folder (default `output_dir/.sink-state`):
  chunk-00000.npz                   dedup state added by flush 0 (decided ids, kept question hashes, signatures)
  manifest.json                     the commit point: shards and chunks that count, totals for the card

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


def shard_name(number: int) -> str:
    return f"part-{number:05d}"


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

    def shard_paths(self, number: int, formats: Sequence[str]) -> dict[str, str]:
        """Format -> path (relative to output_dir) of shard `number`."""
        return {f: f"data/{f}/{shard_name(number)}.{FORMAT_EXT[f]}" for f in formats}

    def write_shard(self, number: int, rows: list[dict[str, Any]], formats: Sequence[str]) -> dict[str, str]:
        """Write one shard in every format; returns format -> relative path."""
        paths = self.shard_paths(number, formats)
        for fmt, rel in paths.items():
            if fmt == "jsonl":
                data = "".join(row_json(r) + "\n" for r in rows).encode("utf-8")
            else:
                buf = io.BytesIO()
                pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), buf, compression="zstd")
                data = buf.getvalue()
            self._write(self.fs, f"{self.root}/{rel}", data)
        return paths

    def write_chunk(self, number: int, arrays: dict[str, np.ndarray]) -> str:
        """Write one state chunk (npz); returns its file name."""
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        name = f"chunk-{number:05d}.npz"
        self._write(self.state_fs, f"{self.state_root}/{name}", buf.getvalue())
        return name

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        data = json.dumps(manifest, sort_keys=True, indent=1).encode("utf-8")
        self._write(self.state_fs, f"{self.state_root}/manifest.json", data)

    def write_card(self, text: str) -> None:
        self._write(self.fs, f"{self.root}/README.md", text.encode("utf-8"))

    # -- reads ------------------------------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any] | None:
        path = f"{self.state_root}/manifest.json"
        if not self.state_fs.exists(path):
            return None
        with self.state_fs.open(path, "rb") as fh:
            return json.loads(fh.read())

    def read_chunk(self, name: str) -> dict[str, np.ndarray]:
        with self.state_fs.open(f"{self.state_root}/{name}", "rb") as fh:
            with np.load(io.BytesIO(fh.read())) as z:
                return {k: z[k] for k in z.files}

    def decisions(self) -> dict[str, list[int]]:
        """The 64-bit ids of every QA the durable state decided on, and of those kept (across every state chunk)."""
        manifest = self.read_manifest() or {"chunks": []}
        decided: list[int] = []
        kept: list[int] = []
        for name in manifest["chunks"]:
            chunk = self.read_chunk(name)
            decided += [int(x) for x in chunk["decided_ids"]]
            kept += [int(x) for x in chunk["kept_ids"]]
        return {"decided": decided, "kept": kept}
