"""The live sampler: a Sampler behind a lock, its snapshot source, its state file, and the paths it publishes.

Shared by the lag-paced producer (linksyn.sampler.pacing), the probes stage and the gRPC servicer. It never touches
the bus: paths go out through the `publish` it is given (linksyn.common.runtime.publish).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Sequence

from linksyn.common.bus.base import OutRecord
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.sampler import metrics
from linksyn.sampler.config import SamplerConfig
from linksyn.sampler.records import path_records
from linksyn.sampler.sampler import Sampler
from linksyn.sampler.state import load_state, save_state
from linksyn.sampler.targets import Deficit, Targets, shift_targets
from linksyn.v1 import records_pb2

log = logging.getLogger(__name__)
SERVICE = "sampler"

Publish = Callable[[Sequence[OutRecord]], None]
"""Produces records and returns once they are stored (Publisher.publish); raises BusError otherwise."""

SnapshotSource = Callable[[int], "GraphSnapshot | None"]
"""Given the version walked now (0 = none), the newest snapshot if it is newer, else None."""


def store_source(url: str) -> SnapshotSource:
    """Snapshots from a graph SnapshotStore (directory or fsspec URL)."""
    from linksyn.common.snapshots.store import SnapshotStore

    store = SnapshotStore(url)

    def newer(current: int) -> GraphSnapshot | None:
        v = store.latest_version()
        return store.load(v) if v is not None and v > current else None

    return newer


def grpc_source(target: str, token: str | None = None, tls_ca: str | None = None) -> SnapshotSource:
    """Snapshots streamed from the graph service at host:port (GraphService.Snapshot), with the services' bearer
    `token` and over TLS verified against `tls_ca` when given. While that service cannot be reached (not up yet,
    restarting) there is no newer snapshot: the sampler keeps its current one."""
    import grpc
    from linksyn.common.runtime.grpc_server import grpc_channel
    from linksyn.common.snapshots.client import fetch_snapshot

    channel = grpc_channel(target, token=token, tls_ca=tls_ca, max_receive_bytes=64 * 1024 * 1024)

    def newer(current: int) -> GraphSnapshot | None:
        try:
            snap = fetch_snapshot(channel, 0, timeout_s=600)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return None
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                # The graph service is starting or restarting: keep walking what we have, ask again next refresh.
                log.warning("sampler: graph service at %s unavailable (%s); staying on graph version %d",
                            target, e.code().name, current)
                return None
            raise
        return snap if snap.version > current else None

    return newer


class LiveSampler:
    """Thread-safe: draws, publishes, persists, swaps snapshots, applies targets."""

    def __init__(self, cfg: SamplerConfig, source: SnapshotSource, publish: Publish | None, paths_topic: str) -> None:
        self.cfg = cfg
        self.source = source
        self.publish = publish
        """None for a sampler that only previews (`linksyn sample`, tests)."""
        self.paths_topic = paths_topic
        self.lock = threading.RLock()
        self.sampler: Sampler | None = None
        self._since_persist = 0
        self._short_links_seen: dict[str, int] = {}
        self._targets = Targets(cfg.discipline_targets, cfg.difficulty_targets, cfg.default_targets)

    # --- snapshots -------------------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Load a newer snapshot if there is one (the first one restores the state file). True if it swapped."""
        current = self.sampler.snapshot.version if self.sampler is not None else 0
        snap = self.source(current)
        if snap is None:
            return False
        with self.lock:
            if self.sampler is None:
                counters, targets = None, self._targets
                if self.cfg.state_path and Path(self.cfg.state_path).exists():
                    counters, targets = load_state(self.cfg.state_path, snap)
                    log.info("sampler: restored %d emitted paths from %s", counters.paths_emitted, self.cfg.state_path)
                self.sampler = Sampler(snap, self.cfg.walk_params(), targets, self.cfg.rng_seed, counters)
            else:
                self.sampler.swap(snap)
            metrics.GRAPH_VERSION.labels(SERVICE).set(snap.version)
            log.info("sampler: walking graph version %d (%d KPs, %d seeds)", snap.version, snap.n_kps, snap.n_seeds)
        return True

    def require(self) -> Sampler:
        if self.sampler is None:
            self.refresh()
        if self.sampler is None:
            raise LookupError("no graph snapshot is available yet")
        return self.sampler

    # --- paths -----------------------------------------------------------------------------------------------

    def emit(self, n: int) -> int:
        """Draw n paths, publish them to linksyn.paths (keyed by path id), count them. Returns n."""
        if self.publish is None:
            raise RuntimeError("this sampler was built without a publisher: it can only preview")
        with self.lock:
            s = self.require()
            batch = s.draw(n)
            recs = path_records(batch, s.snapshot)
            self.publish([OutRecord(self.paths_topic, r.SerializeToString(), key=r.id.encode("utf-8")) for r in recs])
            self._since_persist += n
            if self._since_persist >= self.cfg.persist_every:
                self.persist()
            self._observe(s, n)
        return n

    def preview(self, n: int) -> list[records_pb2.WalkPath]:
        with self.lock:
            s = self.require()
            return path_records(s.draw(n, commit=False), s.snapshot)

    def _observe(self, s: Sampler, n: int) -> None:
        st = s.stats()
        for outcome, total in st["link_paths_short"].items():
            counted = self._short_links_seen.get(outcome, 0)
            if total > counted:
                metrics.SHORT_LINK_PATHS.labels(SERVICE, outcome).inc(total - counted)
            self._short_links_seen[outcome] = total
        metrics.PATHS_EMITTED.labels(SERVICE, s.params.walker).inc(n)
        metrics.KP_COVERAGE.labels(SERVICE).set(st["kp_coverage"])
        metrics.SEED_COVERAGE.labels(SERVICE).set(st["seed_coverage"])
        d_disc, d_diff = s.target_distance()
        metrics.TARGET_DISTANCE.labels(SERVICE, "discipline").set(d_disc)
        metrics.TARGET_DISTANCE.labels(SERVICE, "difficulty").set(d_diff)

    def persist(self) -> None:
        with self.lock:
            if self.cfg.state_path and self.sampler is not None:
                save_state(self.cfg.state_path, self.sampler.counters, self.sampler.snapshot, self.sampler.targets)
            self._since_persist = 0

    # --- control ---------------------------------------------------------------------------------------------

    def set_targets(self, discipline: dict[str, float] | None, difficulty: dict[str, float] | None, **params) -> Targets:
        with self.lock:
            t = self.sampler.targets if self.sampler is not None else self._targets
            new = Targets(
                dict(discipline) if discipline else t.discipline,
                dict(difficulty) if difficulty else t.difficulty,
                t.default,
            )
            if self.sampler is not None:
                self.sampler.set_targets(new)
                if params:
                    self.sampler.set_params(**params)
            self._targets = new
            return new

    def apply_probes(self, report: records_pb2.ProbeReport) -> None:
        """Move the targets toward the report's deficit buckets by at most probe_step (total variation)."""
        with self.lock:
            s = self.require()
            disc, diff = s.resolved_target_dicts()
            deficits = [Deficit(b.discipline, b.difficulty, b.deficit) for b in report.buckets]
            new_disc, new_diff = shift_targets(disc, diff, deficits, self.cfg.probe_step)
            s.set_targets(Targets(new_disc, new_diff, s.targets.default))
            self._targets = s.targets
            metrics.PROBE_REPORTS.labels(SERVICE).inc()

    def stats(self) -> dict:
        with self.lock:
            if self.sampler is None:
                return {"graph_version": 0}
            return {**self.sampler.stats(), "rng_seed": self.cfg.rng_seed}
