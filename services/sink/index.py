"""Every question a partition has decided, on disk: one RocksDB (rocksdict) per partition on the replica's local
volume, so a sink's memory stays flat however many records it has seen.

Keys (9 bytes: a tag and a big-endian 64-bit hash):
  q<question hash> -> <id of the record that first had this question (8 bytes)><outcome (1 byte)>
  i<record id>     -> b""   a record dropped as an exact duplicate (so its redelivery is a replay, not a new drop)
  m                -> JSON  {"dataset": token, "applied": number of the partition's state chunks written here}

Lookups are batched (one multi-get per batch); most are for questions never seen, which the Bloom filters answer
without reading a block. Writes come in one WriteBatch per flushed window, without RocksDB's write-ahead log: the
durable record is the partition's state chunks (linksyn.sink.store), and the batch that applies chunk k also stores
`applied = k + 1`, so after a crash the index is a prefix of the chunks and the rest is applied again.

Memory: one block cache and one memtable budget (WriteBufferManager) shared by all the partitions of a replica, and
the Bloom filters and index blocks of the files (about 1.5 bytes per key).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    WriteBatch,
    WriteBufferManager,
    WriteOptions,
)

ABSENT = 255
"""Outcome code of a question the index does not hold."""
_META = b"m"


def tagged_keys(tag: bytes, values: np.ndarray) -> list[bytes]:
    """`tag` + 8 big-endian bytes of each uint64, built in numpy (one Python object per key, nothing else)."""
    out = np.empty((len(values), 9), dtype=np.uint8)
    out[:, 0] = tag[0]
    out[:, 1:] = np.ascontiguousarray(values, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(-1, 8)
    return out.view("V9").ravel().tolist()


class IndexResources:
    """What the indexes of one replica share: the block cache and the memtable budget."""

    def __init__(self, cache_mb: int, write_buffer_mb: int) -> None:
        self.cache = Cache(cache_mb << 20)
        self.write_buffers = WriteBufferManager(write_buffer_mb << 20, False)
        self.write_buffer_mb = write_buffer_mb

    def options(self) -> Options:
        opt = Options(raw_mode=True)
        opt.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_block_cache(self.cache)
        table.set_bloom_filter(10, False)
        opt.set_block_based_table_factory(table)
        opt.set_write_buffer_manager(self.write_buffers)
        opt.set_write_buffer_size(max(1, self.write_buffer_mb // 2) << 20)
        opt.set_max_write_buffer_number(2)
        opt.set_max_background_jobs(2)
        opt.set_level_compaction_dynamic_level_bytes(True)
        opt.set_compression_type(DBCompressionType.none())  # keys and values are hashes: nothing to compress
        opt.set_keep_log_file_num(2)
        return opt


class ExactIndex:
    """The decided questions of one partition (see the module docstring)."""

    def __init__(self, path: str | Path, resources: IndexResources) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._resources = resources
        self._db = self._open()

    def _open(self) -> Rdict:
        db = Rdict(str(self.path), self._resources.options())
        wo = WriteOptions()
        wo.disable_wal = True
        db.set_write_options(wo)
        return db

    def meta(self) -> dict[str, Any] | None:
        raw = self._db.get(_META)
        return json.loads(raw) if raw is not None else None

    def questions(self, qhashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(owner ids uint64, outcome codes uint8; ABSENT where the question is not held) of each question hash."""
        n = len(qhashes)
        if not n:
            return np.zeros(0, np.uint64), np.zeros(0, np.uint8)
        absent = b"\0" * 8 + bytes([ABSENT])
        raw = b"".join(v if v is not None else absent for v in self._db.get(tagged_keys(b"q", qhashes)))
        rec = np.frombuffer(raw, dtype=np.dtype([("id", ">u8"), ("outcome", "u1")]), count=n)
        return rec["id"].astype(np.uint64), rec["outcome"].copy()

    def dropped_duplicates(self, ids: np.ndarray) -> np.ndarray:
        """Bool per record id: was it dropped as an exact duplicate?"""
        if not len(ids):
            return np.zeros(0, dtype=bool)
        return np.fromiter((v is not None for v in self._db.get(tagged_keys(b"i", ids))), dtype=bool, count=len(ids))

    def apply(self, chunk: dict[str, np.ndarray], duplicate_code: int, dataset: str, applied: int) -> None:
        """Write one state chunk's decisions (qhash, ids, outcome arrays) and `applied` in one batch."""
        wb = WriteBatch(raw_mode=True)
        outcome = chunk["outcome"]
        dup = outcome == duplicate_code
        values = np.empty((int((~dup).sum()), 9), dtype=np.uint8)
        values[:, :8] = chunk["ids"][~dup].astype(">u8").view(np.uint8).reshape(-1, 8)
        values[:, 8] = outcome[~dup]
        for k, v in zip(tagged_keys(b"q", chunk["qhash"][~dup]), values.view("V9").ravel().tolist()):
            wb.put(k, v)
        for k in tagged_keys(b"i", chunk["ids"][dup]):
            wb.put(k, b"")
        wb.put(_META, json.dumps({"dataset": dataset, "applied": applied}).encode())
        self._db.write(wb)

    def close(self, flush: bool = True) -> None:
        """Close (writing memtables out first unless `flush` is False: a crash-like close for tests)."""
        if self._db is None:
            return
        if flush:
            self._db.flush()
        self._db.close()
        self._db = None

    def destroy(self) -> None:
        """Close and delete it (an index of another dataset, or ahead of the durable state)."""
        self.close(flush=False)
        shutil.rmtree(self.path, ignore_errors=True)

    def reset(self) -> None:
        """Empty it, in place."""
        self.destroy()
        self._db = self._open()
