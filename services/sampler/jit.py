"""Just-in-time path production: keep the synth group's lag on linksyn.paths near a target, never flood Kafka.

`JustInTimeProducer` is the sampler's Background loop. In the service it runs until stopped; with `limit` set
(the embedded `linksyn run`, or `sampler.max_paths` in the service) it emits paths until `limit` were emitted in
all (counting those its restored state file records), sets `done` and returns.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from linksyn.common.bus.errors import BusError
from linksyn.sampler import metrics
from linksyn.sampler.service import SERVICE, SamplerService
from linksyn.sampler.walk import UnwalkableGraph

log = logging.getLogger(__name__)

LagReader = Callable[[], int]
"""Paths on linksyn.paths that the synth group has not committed yet."""


def group_lag(bus: Any, group: str, topic: str) -> LagReader:
    """Total lag of `group` on `topic`, read through the bus's admin view (the sampler never joins the group)."""

    def lag() -> int:
        return sum(bus.group_lag(group, topic).values())

    return lag


class JustInTimeProducer:
    def __init__(
        self,
        service: SamplerService,
        lag: LagReader,
        lag_target: int,
        batch: int,
        poll_s: float,
        refresh_s: float,
        limit: int | None = None,
        limit_from_snapshot: Callable[[int], int] | None = None,
    ) -> None:
        self.service = service
        self.lag = lag
        self.lag_target = lag_target
        self.batch = batch
        self.poll_s = poll_s
        self.refresh_s = refresh_s
        self.limit = limit
        """Paths to emit before returning (None = run until stopped)."""
        self.limit_from_snapshot = limit_from_snapshot
        """If set and limit is None at start: limit = this(number of seeds of the first snapshot)."""
        self.emitted = 0
        self.done = threading.Event()
        """Set once `limit` paths were emitted (never set without a limit)."""

    def run(self, stop: threading.Event) -> None:
        # Wait for a first snapshot.
        while not stop.is_set() and self.service.sampler is None:
            if not self.service.refresh():
                stop.wait(self.poll_s)
        if stop.is_set():
            return
        if self.limit is None and self.limit_from_snapshot is not None:
            self.limit = self.limit_from_snapshot(self.service.sampler.snapshot.n_seeds)
        # The limit is a total: paths a previous run of this sampler emitted (restored from its state file) count.
        self.emitted = max(self.emitted, self.service.sampler.counters.paths_emitted)
        last_refresh = time.monotonic()
        unwalkable_version = -1
        try:
            while not stop.is_set():
                if self.limit is not None and self.emitted >= self.limit:
                    self.done.set()
                    return
                if time.monotonic() - last_refresh >= self.refresh_s:
                    self.service.refresh()
                    last_refresh = time.monotonic()
                try:
                    lag = self.lag()
                except BusError as e:
                    # The broker is unreachable for now: wait and ask again (paths cannot be produced either).
                    log.warning("sampler: reading the paths lag failed (%s); trying again", e)
                    stop.wait(max(self.poll_s, 1.0))
                    continue
                metrics.PATHS_LAG.labels(SERVICE).set(lag)
                room = self.lag_target - lag
                if room <= 0:
                    stop.wait(self.poll_s)
                    continue
                n = min(room, self.batch)
                if self.limit is not None:
                    n = min(n, self.limit - self.emitted)
                try:
                    self.emitted += self.service.emit(n)
                except UnwalkableGraph as e:
                    # An early snapshot (the graph service snapshots on a timer, maybe before any edge exists):
                    # wait for a newer one instead of dying.
                    version = self.service.sampler.snapshot.version
                    if version != unwalkable_version:
                        log.warning("sampler: graph version %d cannot be walked yet (%s); waiting for a newer one",
                                    version, e)
                        unwalkable_version = version
                    stop.wait(self.poll_s)
                    if self.service.refresh():
                        last_refresh = time.monotonic()
                    continue
                except BusError as e:
                    log.warning("sampler: producing paths failed (%s); trying again", e)
                    stop.wait(max(self.poll_s, 1.0))
                    continue
                try:
                    self.service.bus.flush()
                except BusError as e:
                    log.warning("sampler: paths not confirmed stored yet (%s); trying again", e)
                    stop.wait(max(self.poll_s, 1.0))
        finally:
            self.service.persist()
