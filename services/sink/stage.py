"""The sink stage: `linksyn.synth-qa` -> deduplicated, decontaminated dataset shards with a card.

State is per partition of the input (linksyn.sink.partition): a record is decided by the partition it arrives in,
and the synth keys every SynthQA by its normalised question (linksyn.common.ids.question_key), so all records of one
question meet in one partition: exact duplicates are never both kept, whatever the number of sink replicas. A record
keyed otherwise (another producer) is not decided where it landed: it is published again under its question's key
and decided in that partition.

Per batch: decode; the features of every record (linksyn.sink.screen.Featurizer: one vectorised pass); then each
partition decides its records. Offsets are committed per partition up to the first record of its unflushed window
(`committable`). A revoked partition's window is dropped (`on_revoke`, after the loop committed what was durable);
whichever replica gets the partition next restores its state from the state folder and redoes the rest.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from fsspec.implementations.local import LocalFileSystem
from linksyn.common.bus.base import Message, OutRecord, TopicPartition
from linksyn.common.dataset import DatasetTotals
from linksyn.common.ids import question_key_of_normalised
from linksyn.common.runtime.stage import (
    MalformedRecord,
    Result,
    decode_batch,
    protobuf_decoder,
)
from linksyn.common.spend.follow import UsageFollower
from linksyn.common.text import collapse_whitespace, fold_text
from linksyn.sink import metrics, tokens
from linksyn.sink.card import card_plots, render_card
from linksyn.sink.config import SinkConfig
from linksyn.sink.decontam import ContaminationIndex
from linksyn.sink.dedup import MINHASH_SEED, MinHasher, NearDupWindow, lsh_params, short_signatures
from linksyn.sink.evalsets import read_eval_set
from linksyn.sink.index import ExactIndex, IndexResources
from linksyn.sink.partition import SinkPartition, SinkStateError, check_manifest
from linksyn.sink.screen import KEPT, OUTCOMES, REPLAY, Featurizer
from linksyn.sink.store import DatasetStore
from linksyn.v1 import records_pb2

log = logging.getLogger(__name__)
INDEX_LOCK_WAIT_S = 30.0
"""Longest wait for a partition's index that another process holds."""


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
        usage: UsageFollower | None = None,
        currency: str = "USD",
    ) -> None:
        if cfg.kept_topic and publish is None:
            raise ValueError(f"sink.kept_topic is {cfg.kept_topic!r} but the stage was given nothing to publish with")
        self.publish = publish
        """Produces records and waits until they are stored (a Publisher's publish): kept rows for kept_topic."""
        self.cfg = cfg
        self.usage = usage
        """The run's LLM spend (the usage topic), shown in the dataset card."""
        self.currency = currency
        self.name = name
        self.input_topics = [input_topic]
        self.clock = clock
        self.store = DatasetStore(cfg.output_dir, cfg.state_dir)
        if contamination is None and cfg.eval_sets:
            texts = [t for es in cfg.eval_sets for t in read_eval_set(es)]
            contamination = ContaminationIndex(texts, cfg.decontam_ngram, cfg.decontam_min_words)
            log.info("decontamination index: %d eval questions, %d n-grams", len(texts), len(contamination))
        self.contamination = contamination
        minhasher = MinHasher(cfg.minhash_perm, cfg.shingle_words, MINHASH_SEED)
        self.featurizer = Featurizer(minhasher, cfg.near_dup_threshold, contamination)
        self._resources = IndexResources(cfg.index_cache_mb, cfg.index_write_buffer_mb)
        self._temp_index: str | None = None
        self.index_root = self._index_root()
        self._lock = threading.RLock()
        self._parts: dict[TopicPartition, SinkPartition] = {}
        self._revoked: set[TopicPartition] = set()
        self._dropped_replays = 0
        """Replays counted by partitions since revoked (their counters go with them)."""
        self.rekeyed = 0
        self._card_written: float | None = None
        self._check_state()
        self._warm_up()

    def _check_state(self) -> None:
        """Refuse to start on state this linksyn cannot continue (rather than fail every record of a partition)."""
        if self.store.state_fs.exists(f"{self.store.state_root}/manifest.json"):
            raise SinkStateError(
                f"sink state in {self.store.state_root!r} is of a single-replica sink (manifest version 1); this "
                "linksyn keeps state per partition: use a new output_dir/state_dir"
            )
        for p, m in self.store.manifests().items():
            check_manifest(m, self.minhash_params(), self.store.partition_root(p))

    def _index_root(self) -> Path:
        if self.cfg.index_dir:
            return Path(self.cfg.index_dir)
        if isinstance(self.store.state_fs, LocalFileSystem):
            return Path(self.store.state_root) / "index"
        self._temp_index = tempfile.mkdtemp(prefix="linksyn-sink-index-")
        log.warning("sink state is in %s (not a local folder) and sink.index_dir is not set: the on-disk indexes go "
                    "to %s and are rebuilt from the state chunks at every start", self.store.state_root,
                    self._temp_index)
        return Path(self._temp_index)

    def _warm_up(self) -> None:
        """Compile (or load from numba's cache) every kernel now rather than in the first batch."""
        words = tokens.text_words(["warm up the kernels 中文"])
        sigs = self.featurizer.minhasher.signatures(words.hashes, words.owners, 1)
        window = NearDupWindow(4, self.cfg.near_dup_threshold, self.cfg.minhash_perm)
        window.screen(window.keys(sigs), short_signatures(sigs), np.ones(1, dtype=bool))

    def minhash_params(self) -> dict[str, Any]:
        """What persisted near-duplicate state depends on (checked when a partition's state is loaded)."""
        bands, rows = lsh_params(self.cfg.near_dup_threshold, self.cfg.minhash_perm)
        return {"num_perm": self.cfg.minhash_perm, "shingle_words": self.cfg.shingle_words, "seed": MINHASH_SEED,
                "bands": bands, "rows": rows}

    def partition(self, tp: TopicPartition) -> SinkPartition:
        """The partition's state, loaded (restored) here on first use: its first record, or a caller that wants it
        loaded ahead (bench/scale.py times restores)."""
        with self._lock:
            part = self._parts.get(tp)
            replays = 0
            if part is not None and part.needs_restore:
                replays = part.replays
                part.drop()
                part = None
            if part is None:
                index = self._open_index(self.index_root / f"p{tp.partition:05d}")
                try:
                    part = SinkPartition(tp.partition, tp.topic, self.cfg, self.store, index, self.minhash_params(),
                                         self.clock, publish=self.publish)
                except BaseException:
                    index.close(flush=False)
                    raise
                metrics.SINK_RESTORE_SECONDS.labels(service=self.name).inc(part.restored.seconds)
                part.replays = replays
                self._parts[tp] = part
            return part

    def _open_index(self, path: Path) -> ExactIndex:
        """The partition's index; while another process still holds it (a replica sharing this index folder that
        has not let the partition go yet), wait up to INDEX_LOCK_WAIT_S rather than fail the records."""
        deadline = time.monotonic() + INDEX_LOCK_WAIT_S
        while True:
            try:
                return ExactIndex(path, self._resources)
            except Exception as e:  # noqa: BLE001 - rocksdict raises plain Exception with RocksDB's status text
                if "lock" not in str(e).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    # -- the stage --------------------------------------------------------------------------------------------

    def process(self, batch: Sequence[Message]) -> list[Result]:
        decoded = decode_batch(batch, decode_synth_qa)
        results: list[Result] = [decoded.failed.get(i) or Result.ok() for i in range(len(batch))]
        if decoded.failed:
            metrics.SINK_DROPPED.labels(service=self.name, reason="malformed").inc(len(decoded.failed))
        with self._lock:
            slots: list[int] = []
            qas: list[records_pb2.SynthQA] = []
            folded: list[str] = []
            qhashes: list[int] = []
            rekeyed = 0
            for i, qa in zip(decoded.slots, decoded.records):
                msg = batch[i]
                tp = TopicPartition(msg.topic, msg.partition)
                if tp in self._revoked:
                    results[i] = Result.failed(f"{msg.topic}[{msg.partition}] was revoked from this sink replica")
                    continue
                fq = fold_text(qa.question)
                key = question_key_of_normalised(collapse_whitespace(fq))
                if msg.key != key:
                    # Decided where its question's records are: published again under the key of the contract.
                    results[i] = Result.ok(OutRecord(msg.topic, msg.value, key=key, headers=msg.headers))
                    rekeyed += 1
                    continue
                slots.append(i)
                qas.append(qa)
                folded.append(fq)
                qhashes.append(int(key, 16))
            if rekeyed:
                self.rekeyed += rekeyed
                metrics.SINK_REKEYED.labels(service=self.name).inc(rekeyed)
            if not qas:
                return results
            f = self.featurizer.features(qas, folded, qhashes, [fold_text(q.answer) for q in qas])
            groups: dict[TopicPartition, list[int]] = {}
            for j, i in enumerate(slots):
                groups.setdefault(TopicPartition(batch[i].topic, batch[i].partition), []).append(j)
            outcomes = np.empty(len(qas), dtype=np.int8)
            for tp, js in groups.items():
                rows = np.asarray(js, dtype=np.int64)
                part = self.partition(tp)
                outcomes[rows] = part.process([batch[slots[j]] for j in js], [qas[j] for j in js], f, rows)
            self._count(outcomes)
        return results

    def _count(self, outcomes: np.ndarray) -> None:
        """Metrics, once per batch (label lookups cost more than the work per record)."""
        codes, counts = np.unique(outcomes, return_counts=True)
        for code, n in zip(codes.tolist(), counts.tolist()):
            if code == REPLAY:
                metrics.SINK_RECORDS.labels(service=self.name, outcome="replay").inc(n)
            elif code == KEPT:
                metrics.SINK_RECORDS.labels(service=self.name, outcome="kept").inc(n)
            else:
                metrics.SINK_RECORDS.labels(service=self.name, outcome="dropped").inc(n)
                metrics.SINK_DROPPED.labels(service=self.name, reason=OUTCOMES[code]).inc(n)

    def committable(self, done: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Done offsets, held back to the first record of each partition's unflushed window."""
        with self._lock:
            out = {}
            for tp, off in done.items():
                part = self._parts.get(tp)
                start = part.window_start if part is not None else None
                out[tp] = off if start is None else min(off, start)
            return out

    def on_assign(self, partitions: set[TopicPartition]) -> None:
        """Partitions (given back) to this replica: their state is loaded when their first record arrives."""
        with self._lock:
            self._revoked -= partitions

    def on_revoke(self, partitions: set[TopicPartition]) -> None:
        """Partitions taken away: their unflushed windows are dropped (their records, uncommitted, go to the next
        owner) and their indexes closed. Records of them still reaching `process` fail (the loop ignores them)."""
        with self._lock:
            for tp in partitions:
                part = self._parts.pop(tp, None)
                if part is not None:
                    self._dropped_replays += part.replays
                    part.drop()
            self._revoked |= partitions

    def tick(self) -> None:
        with self._lock:
            now = self.clock()
            flushed = False
            for part in self._parts.values():
                if part.due(now):
                    self._flush_partition(part)
                    flushed = True
            if flushed and (self._card_written is None or now - self._card_written >= self.cfg.flush_interval_s):
                self.write_card()

    def _flush_partition(self, part: SinkPartition) -> None:
        written = part.flush()
        if written:
            metrics.SINK_RECORDS_WRITTEN.labels(service=self.name).inc(written)
            metrics.SINK_SHARDS.labels(service=self.name).inc(-(-written // self.cfg.shard_records))

    def flush(self) -> None:
        """Make every partition's window durable, then rewrite the dataset card."""
        with self._lock:
            for part in self._parts.values():
                self._flush_partition(part)
            self.write_card()

    def close(self) -> None:
        """Flush, write the card, close the indexes (the partitions' totals stay readable)."""
        with self._lock:
            for part in self._parts.values():
                self._flush_partition(part)
                part.close()
            self.write_card(even_empty=True)  # a run that kept nothing still says so, and what it spent
            if self._temp_index is not None:
                shutil.rmtree(self._temp_index, ignore_errors=True)

    def write_card(self, even_empty: bool = False) -> None:
        """The dataset card from every partition's manifest (the whole dataset, whichever replicas wrote it); before
        any record arrived, only if `even_empty`."""
        manifests = self.store.manifests()
        if not manifests and not self._parts and not even_empty:
            return
        totals = DatasetTotals.of_manifests(manifests)
        formats = list(self.cfg.formats)
        plots = card_plots(totals)
        spend = self.usage.poll().by_service_model() if self.usage is not None else None
        card = render_card(totals, formats, self.cfg.dataset_name, [(f, c) for f, (c, _) in plots.items()], spend,
                           self.currency)
        self.store.write_card(card, {f: svg for f, (_, svg) in plots.items()})
        self._card_written = self.clock()

    @property
    def dataset_totals(self) -> DatasetTotals:
        """Durable totals of the partitions this replica holds."""
        with self._lock:
            out = DatasetTotals()
            for part in self._parts.values():
                out.merge(part.totals)
            return out

    @property
    def totals(self) -> dict[str, int]:
        """Counters of the run report (linksyn run reads them after the last flush, when the partitions are released):
        what the durable dataset holds, summed over every partition's manifest (rows kept, drops by reason as
        `drop:duplicate`, `drop:near_duplicate`, `drop:contaminated`, shards), and the replays this sink skipped."""
        durable = DatasetTotals.of_manifests(self.store.manifests())
        out = {"kept": durable.records, "replays": self.replays, "shards": durable.shards}
        out.update({f"drop:{reason}": n for reason, n in durable.dropped.items()})
        return out

    @property
    def replays(self) -> int:
        """Records skipped as replays of a decision already taken."""
        with self._lock:
            return self._dropped_replays + sum(p.replays for p in self._parts.values())

    def stats(self) -> dict[str, Any]:
        """Totals for the Stats RPC."""
        with self._lock:
            parts = self._parts.values()
            return {
                "durable": self.dataset_totals.to_json(),
                "pending_records": sum(p.pending for p in parts),
                "replays_skipped": self.replays,
                "rekeyed": self.rekeyed,
                "partitions": {
                    str(tp.partition): {"records": p.totals.records, "pending": p.pending,
                                        "near_dup_window": len(p.screen.window) if p.screen.window else 0,
                                        "restore_s": round(p.restored.seconds, 3),
                                        "chunks_applied_at_restore": p.restored.chunks_applied}
                    for tp, p in sorted(self._parts.items())
                },
                "output_dir": self.cfg.output_dir,
            }
