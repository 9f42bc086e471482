"""The sink stage: `linksyn.synth-qa` -> deduplicated, decontaminated dataset shards with a card.

Kept records wait in memory until a flush (a full shard, `flush_interval_s`, or shutdown) writes the shard, the
state chunk and then the manifest. Offsets are committed only up to the first record of the unflushed window
(`committable`), so a crash replays exactly the records whose effect was not yet durable, and the persisted ids
make every record that was durable a replay that is skipped: the dataset is effectively-once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from linksyn.common.bus.base import Message, OutRecord, TopicPartition
from linksyn.common.runtime.stage import (
    MalformedRecord,
    Result,
    decode_batch,
    protobuf_decoder,
)
from linksyn.sink import metrics
from linksyn.sink.card import DatasetTotals, render_card
from linksyn.sink.config import SinkConfig
from linksyn.sink.decontam import ContaminationIndex
from linksyn.sink.dedup import MINHASH_SEED, DedupIndex, MinHasher
from linksyn.sink.evalsets import read_eval_set
from linksyn.sink.kept import kept_records
from linksyn.sink.screen import KEPT, REPLAY, Screen
from linksyn.sink.store import DatasetStore, dataset_row
from linksyn.v1 import records_pb2

log = logging.getLogger(__name__)
MANIFEST_VERSION = 1


def check_synth_qa(qa: records_pb2.SynthQA) -> None:
    """A SynthQA the sink can keep: id (at least 16 hex characters: the dedup key), question and answer."""
    missing = [f for f in ("id", "question", "answer") if not getattr(qa, f).strip()]
    if missing:
        raise MalformedRecord(f"SynthQA {qa.id or '<no id>'} has empty {', '.join(missing)}", "missing_field")
    if len(qa.id) < 16:
        raise MalformedRecord(f"SynthQA id {qa.id!r} is shorter than 16 hex characters", "bad_id")
    try:
        int(qa.id[:16], 16)
    except ValueError:
        raise MalformedRecord(f"SynthQA id {qa.id!r} is not hexadecimal", "bad_id") from None


decode_synth_qa = protobuf_decoder(records_pb2.SynthQA, check_synth_qa)
"""A SynthQA from bytes; MalformedRecord naming what is wrong if it does not parse or lacks id/question/answer."""


class SinkStage:
    """Stage consuming SynthQA and writing the dataset. Stateful: batches run one at a time."""

    concurrent_batches = False

    def __init__(
        self,
        cfg: SinkConfig,
        input_topic: str,
        name: str = "sink",
        clock: Callable[[], float] = time.monotonic,
        contamination: ContaminationIndex | None = None,
        publish: Callable[[Sequence[OutRecord]], None] | None = None,
    ) -> None:
        if cfg.kept_topic and publish is None:
            raise ValueError(f"sink.kept_topic is {cfg.kept_topic!r} but the stage was given nothing to publish with")
        self.publish = publish
        """Produces records and waits until they are stored (a Publisher's publish): kept rows for kept_topic."""
        self.cfg = cfg
        self.name = name
        self.input_topics = [input_topic]
        self.clock = clock
        self.store = DatasetStore(cfg.output_dir, cfg.state_dir)
        if contamination is None and cfg.eval_sets:
            texts = [t for es in cfg.eval_sets for t in read_eval_set(es)]
            contamination = ContaminationIndex(texts, cfg.decontam_ngram, cfg.decontam_min_words)
            log.info("decontamination index: %d eval questions, %d n-grams", len(texts), len(contamination))
        minhasher = MinHasher(cfg.minhash_perm, cfg.shingle_words, MINHASH_SEED)
        self.screen = Screen(minhasher, DedupIndex(cfg.near_dup_threshold, cfg.minhash_perm), contamination)
        self._lock = threading.RLock()
        self.totals = DatasetTotals()
        self.shards: list[dict[str, Any]] = []
        self.chunks: list[str] = []
        self._reset_window()
        self.replays = 0
        self._restore()

    # -- state ------------------------------------------------------------------------------------------------

    def _minhash_params(self) -> dict[str, Any]:
        return {"num_perm": self.cfg.minhash_perm, "shingle_words": self.cfg.shingle_words, "seed": MINHASH_SEED}

    def _restore(self) -> None:
        manifest = self.store.read_manifest()
        if manifest is None:
            return
        if manifest.get("version") != MANIFEST_VERSION:
            raise ValueError(f"sink manifest version {manifest.get('version')!r}, this linksyn reads {MANIFEST_VERSION}")
        if manifest["minhash"] != self._minhash_params():
            raise ValueError(
                f"sink state in {self.store.state_root!r} was built with MinHash {manifest['minhash']}, config says "
                f"{self._minhash_params()}: use a new output_dir/state_dir or the old settings"
            )
        self.shards = manifest["shards"]
        self.chunks = manifest["chunks"]
        self.totals = DatasetTotals.from_json(manifest["totals"])
        parts = [self.store.read_chunk(c) for c in self.chunks]
        cat = lambda k, dt, shape=(0,): np.concatenate([p[k] for p in parts]) if parts else np.empty(shape, dt)  # noqa: E731
        self.screen.dedup.restore(
            cat("decided_ids", np.uint64), cat("kept_qhashes", np.uint64),
            cat("kept_sigs", np.uint32, (0, self.cfg.minhash_perm)),
        )
        log.info("sink restored: %d records in %d shards, %d ids seen", self.totals.records, len(self.shards),
                 len(self.screen.dedup.seen_ids))

    def _reset_window(self) -> None:
        self._rows: list[dict[str, Any]] = []
        self._kept_ids: list[int] = []
        self._qhashes: list[int] = []
        self._sigs: list[np.ndarray] = []
        self._decided: list[int] = []
        self._drops: Counter = Counter()
        self._window_start: dict[TopicPartition, int] = {}
        self._window_opened: float | None = None

    # -- the stage --------------------------------------------------------------------------------------------

    def process(self, batch: Sequence[Message]) -> list[Result]:
        decoded = decode_batch(batch, decode_synth_qa)
        results: list[Result] = [decoded.failed.get(i) or Result.ok() for i in range(len(batch))]
        qas: list[records_pb2.SynthQA] = decoded.records
        slots = decoded.slots
        if decoded.failed:
            metrics.SINK_DROPPED.labels(service=self.name, reason="malformed").inc(len(decoded.failed))
        with self._lock:
            res = self.screen.screen(qas)
            self._count(res.outcomes)
            for j, (i, qa) in enumerate(zip(slots, qas)):
                msg, outcome = batch[i], res.outcomes[j]
                if outcome == REPLAY:
                    self.replays += 1
                    continue
                if self._window_opened is None:
                    self._window_opened = self.clock()
                start = self._window_start.get(msg.tp)
                if start is None or msg.offset < start:
                    self._window_start[msg.tp] = msg.offset
                self._decided.append(res.ids[j])
                if outcome == KEPT:
                    self._rows.append(dataset_row(qa))
                    self._kept_ids.append(res.ids[j])
                    self._qhashes.append(res.qhashes[j])
                    self._sigs.append(res.sigs[j])
                    if len(self._rows) >= self.cfg.shard_records:
                        self.flush()  # shards hold exactly shard_records, except the last of a window
                else:
                    self._drops[outcome] += 1
        return results

    def _count(self, outcomes: list[str]) -> None:
        """Metrics, once per batch (label lookups cost more than the work per record)."""
        for outcome, n in Counter(outcomes).items():
            bucket = outcome if outcome in (KEPT, REPLAY) else "dropped"
            metrics.SINK_RECORDS.labels(service=self.name, outcome=bucket).inc(n)
            if bucket == "dropped":
                metrics.SINK_DROPPED.labels(service=self.name, reason=outcome).inc(n)

    def committable(self, done: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Done offsets, held back to the first record of the unflushed window of each partition."""
        with self._lock:
            return {tp: min(off, self._window_start.get(tp, off)) for tp, off in done.items()}

    def tick(self) -> None:
        with self._lock:
            if self._window_opened is not None and self.clock() - self._window_opened >= self.cfg.flush_interval_s:
                self.flush()

    def close(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Make the window durable: shard (if records are pending), state chunk, manifest (the commit point), card."""
        with self._lock:
            if self._window_opened is None:
                return
            formats = list(self.cfg.formats)
            shards = list(self.shards)
            if self._rows:
                number = len(shards)
                files = self.store.write_shard(number, self._rows, formats)
                shards.append({"number": number, "records": len(self._rows), "files": files})
            chunk = self.store.write_chunk(
                len(self.chunks),
                {
                    "decided_ids": np.asarray(self._decided, dtype=np.uint64),
                    "kept_ids": np.asarray(self._kept_ids, dtype=np.uint64),
                    "kept_qhashes": np.asarray(self._qhashes, dtype=np.uint64),
                    "kept_sigs": (np.stack(self._sigs) if self._sigs
                                  else np.empty((0, self.cfg.minhash_perm), np.uint32)).astype(np.uint32),
                    "shard": np.asarray([len(shards) - 1 if self._rows else -1], dtype=np.int64),
                },
            )
            if self._rows and self.cfg.kept_topic and self.publish is not None:
                # After the shard, before the manifest: a published row is in a written shard, and a crash before
                # the manifest replays (and publishes again) rather than losing it.
                self.publish(kept_records(self._rows, self.cfg.kept_topic))
            totals = DatasetTotals.from_json(self.totals.to_json())
            totals.add_rows(self._rows)
            totals.dropped.update(self._drops)
            totals.shards = len(shards)
            self.store.write_manifest(
                {
                    "version": MANIFEST_VERSION,
                    "minhash": self._minhash_params(),
                    "formats": formats,
                    "shards": shards,
                    "chunks": [*self.chunks, chunk],
                    "totals": totals.to_json(),
                }
            )
            self.chunks.append(chunk)
            self.shards = shards
            self.totals = totals
            if self._rows:
                metrics.SINK_SHARDS.labels(service=self.name).inc()
                metrics.SINK_RECORDS_WRITTEN.labels(service=self.name).inc(len(self._rows))
            self.store.write_card(render_card(self.totals, formats, self.cfg.dataset_name))
            self._reset_window()

    def stats(self) -> dict[str, Any]:
        """Totals for the Stats RPC."""
        with self._lock:
            return {
                "durable": self.totals.to_json(),
                "pending_records": len(self._rows),
                "pending_drops": dict(self._drops),
                "replays_skipped": self.replays,
                "near_dup_index": len(self.screen.dedup),
                "output_dir": self.cfg.output_dir,
            }
