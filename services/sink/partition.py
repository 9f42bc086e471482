"""One partition of the sink's input: its decisions, its pending window of records, its durable state.

A partition is the unit of the sink's state. Its records (every record of a question, by the synth-qa key contract)
are decided against its own index and near-duplicate window, its kept records go to its own shards, and its state
persists in its own folder (linksyn.sink.store): chunks of decisions and a manifest. Whichever replica holds the
partition restores it from there: the local index (linksyn.sink.index) is brought up to the manifest by applying the
chunks it lacks (all of them on a replica that never held the partition), and the near-duplicate window is refilled
from the newest chunks.

Kept records wait in memory until a flush (a full shard, `flush_interval_s`, or shutdown) writes the shard, the state
chunk and then the manifest: the commit point. Offsets are committed only up to the first record of the unflushed
window, so a crash replays exactly the records whose effect was not yet durable, and the persisted decisions make
every record that was durable a replay that is skipped: the dataset is effectively-once.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from linksyn.common.bus.base import Message, OutRecord
from linksyn.common.dataset import DatasetTotals
from linksyn.sink.config import SinkConfig
from linksyn.sink.dedup import NearDupWindow
from linksyn.sink.index import ExactIndex
from linksyn.sink.kept import kept_records
from linksyn.sink.screen import DUPLICATE, KEPT, OUTCOMES, REPLAY, Features, PartitionScreen
from linksyn.sink.store import DatasetStore, dataset_columns, dataset_rows
from linksyn.v1 import records_pb2

log = logging.getLogger(__name__)
MANIFEST_VERSION = 2


class SinkStateError(ValueError):
    """Persisted state this sink cannot use (another version or other MinHash settings)."""


def check_manifest(manifest: dict[str, Any], minhash: dict[str, Any], where: str) -> None:
    """SinkStateError unless this linksyn can continue the state `manifest` describes with these MinHash settings."""
    if manifest.get("version") != MANIFEST_VERSION:
        raise SinkStateError(
            f"sink state in {where!r} has manifest version {manifest.get('version')!r}; this linksyn keeps state "
            f"per partition (version {MANIFEST_VERSION}): use a new output_dir/state_dir"
        )
    if manifest["minhash"] != minhash:
        raise SinkStateError(
            f"sink state in {where!r} was built with MinHash {manifest['minhash']}, config says {minhash}: "
            "use a new output_dir/state_dir or the old settings"
        )


@dataclass
class RestoreReport:
    """How a partition was loaded: chunks applied to its index, records put back in its window, seconds taken."""

    chunks: int
    chunks_applied: int
    window_records: int
    index_rebuilt: bool
    seconds: float


class SinkPartition:
    """The state of one partition (see the module docstring). Not thread-safe: the stage serialises calls."""

    def __init__(
        self,
        partition: int,
        topic: str,
        cfg: SinkConfig,
        store: DatasetStore,
        index: ExactIndex,
        minhash: dict[str, Any],
        clock: Callable[[], float] = time.monotonic,
        publish: Callable[[Sequence[OutRecord]], None] | None = None,
    ) -> None:
        self.partition = partition
        self.publish = publish
        """Produces records and waits until they are stored: the kept rows for `sink.kept_topic`."""
        self.topic = topic
        self.cfg = cfg
        self.store = store
        self.minhash = minhash
        self.clock = clock
        window = (NearDupWindow(max(2, cfg.near_dup_window), cfg.near_dup_threshold, cfg.minhash_perm)
                  if cfg.near_dup_window else None)
        self.screen = PartitionScreen(index, window)
        self.totals = DatasetTotals()
        self.shards: list[dict[str, Any]] = []
        self.chunks: list[str] = []
        self.dataset = uuid.uuid4().hex
        """Token of this partition's state: the index of another dataset's partition is not mistaken for it."""
        self.replays = 0
        self.needs_restore = False
        """Set when the index could not be written after a commit, or once closed: reload before the next record."""
        self._reset_window()
        self.restored = self.restore()

    # -- state ------------------------------------------------------------------------------------------------

    def restore(self) -> RestoreReport:
        """Load the partition's durable state: manifest, index caught up with its chunks, near-duplicate window."""
        t0 = time.perf_counter()
        index = self.screen.index
        manifest = self.store.read_manifest(self.partition)
        meta = index.meta()
        if manifest is None:
            if meta is not None:
                index.reset()  # an index whose state chunks are gone (another dataset in the same folder)
            return RestoreReport(0, 0, 0, meta is not None, time.perf_counter() - t0)
        self._check(manifest)
        self.shards = manifest["shards"]
        self.chunks = manifest["chunks"]
        self.totals = DatasetTotals.from_json(manifest["totals"])
        self.dataset = manifest["dataset"]
        applied = 0 if meta is None else int(meta["applied"])
        rebuilt = meta is None or meta["dataset"] != self.dataset or applied > len(self.chunks)
        if rebuilt:
            if meta is not None:
                log.warning("sink partition %d: local index %s does not match the state in %s; rebuilding it",
                            self.partition, index.path, self.store.partition_root(self.partition))
                index.reset()
            applied = 0
        cached: dict[int, dict[str, np.ndarray]] = {}
        for k in range(applied, len(self.chunks)):
            chunk = self.store.read_chunk(self.partition, self.chunks[k])
            index.apply(chunk, DUPLICATE, self.dataset, k + 1)
            if len(self.chunks) - k <= 4:  # the newest chunks refill the window just below
                cached[k] = chunk
        refilled = self._refill_window(cached)
        report = RestoreReport(len(self.chunks), len(self.chunks) - applied, refilled, rebuilt,
                               time.perf_counter() - t0)
        log.info("sink partition %d restored in %.2f s: %d records in %d shards, %d of %d chunks applied to the "
                 "index%s, %d records in the near-duplicate window", self.partition, report.seconds,
                 self.totals.records, len(self.shards), report.chunks_applied, report.chunks,
                 " (rebuilt)" if rebuilt else "", refilled)
        return report

    def _check(self, manifest: dict[str, Any]) -> None:
        check_manifest(manifest, self.minhash, self.store.partition_root(self.partition))

    def _refill_window(self, cached: dict[int, dict[str, np.ndarray]]) -> int:
        window = self.screen.window
        if window is None:
            return 0
        want = window.restore_span(self.totals.records)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        got = 0
        for k in range(len(self.chunks) - 1, -1, -1):
            if got >= want:
                break
            chunk = cached.get(k) or self.store.read_chunk(self.partition, self.chunks[k])
            parts.append((chunk["kept_keys"], chunk["kept_short"]))
            got += len(chunk["kept_keys"])
        if not parts:
            return 0
        keys = np.concatenate([p[0] for p in reversed(parts)])[-want:]
        short = np.concatenate([p[1] for p in reversed(parts)])[-want:]
        window.add(keys, short)
        return len(keys)

    def _reset_window(self) -> None:
        self._kept: list[records_pb2.SynthQA] = []
        """The pending kept records, in order (written a column at a time)."""
        self._decisions: list[dict[str, np.ndarray]] = []
        """Pending decisions, a batch at a time, in offset order: qhash, ids, outcome, offset."""
        self._kept_keys: list[np.ndarray] = []
        self._kept_short: list[np.ndarray] = []
        self.window_start: int | None = None
        """Offset of the first record whose decision is not durable yet (None: nothing pending)."""
        self._opened: float | None = None

    @property
    def pending(self) -> int:
        """Kept records waiting for the next shard."""
        return len(self._kept)

    # -- records ----------------------------------------------------------------------------------------------

    def process(self, msgs: Sequence[Message], qas: Sequence[records_pb2.SynthQA], f: Features,
                rows: np.ndarray) -> np.ndarray:
        """Decide this partition's records (`msgs`, their decoded `qas`, rows `rows` of the batch's features, in
        offset order); keep what is kept for the next shard, and write the shards that are full. Returns the
        outcome codes."""
        out = self.screen.decide(f, rows)
        decided = out != REPLAY
        self.replays += int((~decided).sum())
        if not decided.any():
            return out
        if self._opened is None:
            self._opened = self.clock()
        offsets = np.fromiter((m.offset for m in msgs), dtype=np.int64, count=len(msgs))[decided]
        if self.window_start is None or int(offsets[0]) < self.window_start:
            self.window_start = int(offsets[0])
        sel = rows[decided]
        self._decisions.append({"qhash": f.qhash[sel], "ids": f.ids[sel], "outcome": out[decided].astype(np.uint8),
                                "offset": offsets})
        kept = out == KEPT
        if kept.any():
            self._kept_keys.append(f.keys[rows[kept]])
            self._kept_short.append(f.short[rows[kept]])
            self._kept.extend(qas[i] for i in np.flatnonzero(kept).tolist())
        size = self.cfg.shard_records
        if len(self._kept) >= size:
            self._flush(len(self._kept) - len(self._kept) % size)  # full shards now; the rest waits for more
        return out

    def due(self, now: float) -> bool:
        return self._opened is not None and now - self._opened >= self.cfg.flush_interval_s

    def flush(self) -> int:
        """Make the window durable: shards (if records are pending), state chunk, manifest (the commit point), then the
        index. Returns the records written."""
        return self._flush(len(self._kept))

    def _flush(self, n_rows: int) -> int:
        """Make durable the window up to its n_rows-th kept record (all of it when n_rows is every pending row): the
        decisions after that record stay pending, with their rows."""
        if self._opened is None:
            return 0
        d = {k: np.concatenate([b[k] for b in self._decisions]) for k in ("qhash", "ids", "outcome", "offset")}
        kept_at = np.flatnonzero(d["outcome"] == KEPT)
        cut = len(d["outcome"]) if n_rows >= len(self._kept) else int(kept_at[n_rows - 1]) + 1 if n_rows else 0
        keys = _cat(self._kept_keys, np.uint64, (0, self.minhash["bands"]))
        short = _cat(self._kept_short, np.uint8, (0, self.cfg.minhash_perm))
        columns = dataset_columns(self._kept[:n_rows])
        formats = list(self.cfg.formats)
        shards = list(self.shards)
        size = self.cfg.shard_records
        for start in range(0, n_rows, size):  # shards of shard_records, but the last of a window
            part = {k: v[start : start + size] for k, v in columns.items()}
            number = len(shards)
            files = self.store.write_shard(self.partition, number, part, formats)
            shards.append({"number": number, "records": len(part["id"]), "files": files})
        chunk = {
            "qhash": d["qhash"][:cut], "ids": d["ids"][:cut], "outcome": d["outcome"][:cut],
            "kept_keys": keys[:n_rows], "kept_short": short[:n_rows],
            "shards": np.arange(len(self.shards), len(shards), dtype=np.int64),  # the shards of this window
        }
        name = self.store.write_chunk(self.partition, len(self.chunks), chunk)
        if n_rows and self.cfg.kept_topic and self.publish is not None:
            # After the shards, before the manifest: a published row is in a written shard, and a crash before the
            # manifest replays (and publishes again) rather than losing it.
            self.publish(kept_records(dataset_rows(columns), self.cfg.kept_topic))
        totals = DatasetTotals.from_json(self.totals.to_json())
        totals.add_columns(columns)
        totals.dropped.update(OUTCOMES[int(c)] for c in chunk["outcome"].tolist() if c != KEPT)
        totals.shards = len(shards)
        self.store.write_manifest(self.partition, {
            "version": MANIFEST_VERSION,
            "topic": self.topic,
            "partition": self.partition,
            "dataset": self.dataset,
            "minhash": self.minhash,
            "formats": formats,
            "shards": shards,
            "chunks": [*self.chunks, name],
            "totals": totals.to_json(),
        })
        # Durable from here on: the manifest lists the shards and the chunk.
        self.chunks.append(name)
        self.shards = shards
        self.totals = totals
        carried = {k: v[cut:] for k, v in d.items()}
        carried_kept, opened = self._kept[n_rows:], self._opened
        self._reset_window()
        if len(carried["outcome"]):
            self._decisions = [carried]
            self._kept = carried_kept
            self._kept_keys, self._kept_short = [keys[n_rows:]], [short[n_rows:]]
            self.window_start = int(carried["offset"][0])
            self._opened = opened
        try:
            self.screen.index.apply(chunk, DUPLICATE, self.dataset, len(self.chunks))
        except Exception:
            self.needs_restore = True  # the chunk is durable; restore() applies it
            raise
        self.screen.forget_pending(chunk["qhash"], chunk["ids"], chunk["outcome"] == DUPLICATE)
        return n_rows

    def close(self) -> None:
        """Flush and close the index (its totals stay readable; a record after this reloads the partition)."""
        self.flush()
        self.screen.index.close()
        self.needs_restore = True

    def drop(self) -> None:
        """Forget the pending window (the partition moved away; its next owner redoes it) and close the index."""
        self._reset_window()
        self.screen.index.close()


def _cat(parts: list[np.ndarray], dtype: type, empty_shape: tuple[int, ...] = (0,)) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(empty_shape, dtype)
