"""The graph stage: consumes `linksyn.seed-kps`, grows the KP graph, publishes durable snapshots.

Exactly-the-same-graph-after-a-restart, how:
- every snapshot records, per partition, the offsets the loop reported done (`committable` sees them) before the
  snapshot was taken, so every record below them is in the snapshot (later records may be too: harmless);
- `committable` lets the loop commit only up to the last *durable* snapshot's offsets, so a crash never loses a
  committed record: the restarted service loads that snapshot and the group resumes at or before its offsets;
- replaying a seed already in the graph changes nothing (ingest skips known seed ids), so the replayed records
  between the committed offsets and the snapshot's content are no-ops.

Threads: `process` runs on the loop's single worker (concurrent_batches = False); `tick`, `committable` and `close`
on the loop thread; gRPC threads only read `published`. A lock keeps ingest and snapshot copies apart; the slow part
of a snapshot (writing it) runs outside the lock.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Mapping, Sequence

from linksyn.common.bus.base import Message, TopicPartition
from linksyn.common.config import TopicsConfig
from linksyn.common.grades import GRADES, UNKNOWN, is_grade
from linksyn.common.runtime.stage import (
    MalformedRecord,
    Result,
    decode_batch,
    protobuf_decoder,
)
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.graph import metrics
from linksyn.graph.build import KPGraph, SeedBatch
from linksyn.graph.config import GraphConfig
from linksyn.v1.records_pb2 import AnnotatedSeed

log = logging.getLogger(__name__)


def annotated_seed_decoder(cfg: GraphConfig) -> Callable[[bytes], AnnotatedSeed]:
    """The decoder of `linksyn.seed-kps` records under `cfg`'s limits (MalformedRecord saying what is wrong)."""
    return protobuf_decoder(AnnotatedSeed, lambda msg: check_annotated_seed(msg, cfg))


def check_annotated_seed(msg: AnnotatedSeed, cfg: GraphConfig) -> None:
    """An AnnotatedSeed the graph can ingest; MalformedRecord with a reason code otherwise."""
    sid = msg.seed.id
    if cfg.reject_unknown_fields:
        size = msg.ByteSize()
        probe = AnnotatedSeed()
        probe.CopyFrom(msg)
        probe.DiscardUnknownFields()
        if probe.ByteSize() != size:
            raise MalformedRecord(
                f"AnnotatedSeed {sid!r} carries {size - probe.ByteSize()} bytes of fields unknown to this schema "
                "(producer newer than the graph service?)", "unknown_fields"
            )
    if not sid:
        raise MalformedRecord("AnnotatedSeed has an empty seed.id", "no_seed_id")
    n = len(msg.kps)
    if n == 0:
        raise MalformedRecord(f"AnnotatedSeed {sid!r} has no KPs", "no_kps")
    if n > cfg.max_kps_per_seed:
        raise MalformedRecord(
            f"AnnotatedSeed {sid!r} has {n} KPs, more than graph.max_kps_per_seed={cfg.max_kps_per_seed}", "too_many_kps"
        )
    for kp in msg.kps:
        if not kp.strip():
            raise MalformedRecord(f"AnnotatedSeed {sid!r} has an empty KP among {list(msg.kps)!r}", "empty_kp")
        if len(kp) > cfg.max_kp_chars:
            raise MalformedRecord(
                f"AnnotatedSeed {sid!r} has a KP of {len(kp)} characters (graph.max_kp_chars={cfg.max_kp_chars}): "
                f"{kp[:60]!r}...", "kp_too_long"
            )
    text = len(msg.seed.question) + len(msg.seed.answer)
    if text > cfg.max_seed_text_chars:
        raise MalformedRecord(
            f"AnnotatedSeed {sid!r} has {text} characters of question+answer "
            f"(graph.max_seed_text_chars={cfg.max_seed_text_chars})", "oversized"
        )
    if not (is_grade(msg.difficulty) or msg.difficulty == UNKNOWN):
        raise MalformedRecord(
            f"AnnotatedSeed {sid!r} has difficulty {msg.difficulty}, expected 0 or a grade {GRADES}", "bad_difficulty"
        )


class GraphStage:
    """The consumer Stage of the graph service (with the StageHooks committable / tick / close)."""

    name = "graph"
    concurrent_batches = False

    def __init__(
        self, cfg: GraphConfig, topics: TopicsConfig, store: SnapshotStore | None = None, name: str = "graph"
    ) -> None:
        self.cfg = cfg
        self.name = name
        self.input_topics = [topics.seed_kps]
        self.store = store if store is not None else SnapshotStore(cfg.snapshot_url, keep=cfg.snapshot_keep)
        self._decode = annotated_seed_decoder(cfg)
        self._lock = threading.Lock()
        self._m_ingested = metrics.SEEDS_INGESTED.labels(service=name)
        self._m_replayed = metrics.SEEDS_REPLAYED.labels(service=name)
        self._m_kps = metrics.GRAPH_KPS.labels(service=name)
        self._m_seeds = metrics.GRAPH_SEEDS.labels(service=name)

        t0 = time.perf_counter()
        latest = self.store.latest(verify=cfg.verify_on_load)
        self.graph = KPGraph.from_snapshot(latest) if latest is not None else KPGraph()
        self.published: GraphSnapshot | None = latest
        """The last durable snapshot (what queries and the Snapshot stream serve)."""
        self._durable: dict[TopicPartition, int] = _tp_offsets(latest.offsets) if latest else {}
        self._done_seen: dict[TopicPartition, int] = dict(self._durable)
        self._seeds_since = 0
        self._published_wall = (
            int(latest.meta.get("created_unix_ms", 0)) / 1000 if latest else time.time()
        )
        self._published_at = time.monotonic()
        metrics.SNAPSHOT_AGE.labels(service=name).set_function(lambda: time.time() - self._published_wall)
        self._update_gauges(latest)
        if latest is not None:
            log.info(
                "graph: resumed from snapshot v%d of %s (%d KPs, %d seeds, %d edges) in %.1fs; offsets %s",
                latest.version, self.store.url, latest.n_kps, latest.n_seeds, latest.n_edges,
                time.perf_counter() - t0, latest.offsets,
            )

    # ---- Stage -------------------------------------------------------------------------------------------------

    def process(self, batch: Sequence[Message]) -> list[Result]:
        decoded = decode_batch(batch, self._decode)
        results = [decoded.failed.get(i) or Result.ok() for i in range(len(batch))]
        for reason in decoded.reasons.values():
            metrics.SEEDS_REJECTED.labels(service=self.name, reason=reason).inc()
        good: list[AnnotatedSeed] = decoded.records
        if good:
            seeds = SeedBatch.from_annotated(good)
            with self._lock:
                report = self.graph.ingest(seeds)
                self._seeds_since += report.seeds_added
                n_kps, n_seeds = self.graph.n_kps, self.graph.n_seeds
            self._m_ingested.inc(report.seeds_added)
            self._m_replayed.inc(report.seeds_skipped)
            self._m_kps.set(n_kps)
            self._m_seeds.set(n_seeds)
        return results

    # ---- StageHooks --------------------------------------------------------------------------------------------

    def committable(self, done: Mapping[TopicPartition, int]) -> Mapping[TopicPartition, int]:
        # Everything below `done` has been ingested by now: the next snapshot may claim it.
        for tp, off in done.items():
            if off > self._done_seen.get(tp, -1):
                self._done_seen[tp] = off
        return {tp: min(off, self._durable[tp]) for tp, off in done.items() if tp in self._durable}

    def tick(self) -> None:
        if self._seeds_since >= self.cfg.snapshot_every_seeds or (
            self.dirty() and time.monotonic() - self._published_at >= self.cfg.snapshot_every_s
        ):
            self.publish()

    def close(self) -> None:
        if self.dirty() or self.published is None:
            self.publish()

    # ---- snapshots ---------------------------------------------------------------------------------------------

    def dirty(self) -> bool:
        """Seeds ingested or offsets consumed since the last durable snapshot."""
        return self._seeds_since > 0 or any(off > self._durable.get(tp, -1) for tp, off in self._done_seen.items())

    def publish(self) -> GraphSnapshot:
        """Take a snapshot, write it durably, and only then let the loop commit up to its offsets."""
        t0 = time.perf_counter()
        version = (self.published.version if self.published else 0) + 1
        offsets = dict(self._done_seen)
        with self._lock:
            since = self._seeds_since
            snap = self.graph.to_snapshot(
                version,
                offsets=_topic_offsets(offsets),
                meta={"created_unix_ms": str(int(time.time() * 1000)), "service": self.name},
            )
            self._seeds_since = 0
        try:
            manifest = self.store.write(snap)
        except BaseException:
            with self._lock:
                self._seeds_since += since
            raise
        self.published = snap
        self._durable = offsets
        self._published_wall = time.time()
        self._published_at = time.monotonic()
        seconds = time.perf_counter() - t0
        metrics.SNAPSHOT_SECONDS.labels(service=self.name).observe(seconds)
        metrics.SNAPSHOT_BYTES.labels(service=self.name).set(sum(a["bytes"] for a in manifest["arrays"].values()))
        self._update_gauges(snap)
        log.info(
            "graph: snapshot v%d (%d KPs, %d edges, %d seeds) written to %s in %.2fs",
            version, snap.n_kps, snap.n_edges, snap.n_seeds, self.store.url, seconds,
        )
        return snap

    def _update_gauges(self, snap: GraphSnapshot | None) -> None:
        if snap is None:
            return
        metrics.SNAPSHOT_VERSION.labels(service=self.name).set(snap.version)
        metrics.GRAPH_EDGES.labels(service=self.name).set(snap.n_edges)
        self._m_kps.set(snap.n_kps)
        self._m_seeds.set(snap.n_seeds)

    def live_stats(self) -> dict[str, int]:
        """Sizes of the live graph (ahead of the published snapshot)."""
        with self._lock:
            return {"kps": self.graph.n_kps, "seeds": self.graph.n_seeds}


def _tp_offsets(offsets: Mapping[str, Mapping[int, int]]) -> dict[TopicPartition, int]:
    return {TopicPartition(t, int(p)): int(o) for t, parts in offsets.items() for p, o in parts.items()}


def _topic_offsets(offsets: Mapping[TopicPartition, int]) -> dict[str, dict[int, int]]:
    out: dict[str, dict[int, int]] = {}
    for tp, off in sorted(offsets.items()):
        out.setdefault(tp.topic, {})[tp.partition] = off
    return out
