"""Lag-paced path production: paths are made just in time, keeping the synth group's lag on linksyn.paths near a
target, so coverage counts are fresh and Kafka is not flooded.

`LagPacedProducer` is the sampler's background loop. It runs until stopped, or, with a limit (sampler.max_paths, or
sampler.paths_per_seed of the first snapshot: `SamplerConfig.path_limit`), until that many paths were emitted in
all (counting those its restored state file records), or, with a budget (linksyn.sampler.budget), until the budget
is spent; it then sets `done`, says why in `stop_reason`, and returns.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from linksyn.common.bus.errors import BusError
from linksyn.sampler import metrics
from linksyn.sampler.budget import BudgetGate
from linksyn.sampler.live import SERVICE, LiveSampler
from linksyn.sampler.walk import UnwalkableGraph

log = logging.getLogger(__name__)

LagReader = Callable[[], int]
"""Paths on linksyn.paths that the synth group has not committed yet."""


def group_lag(bus: Any, group: str, topic: str) -> LagReader:
    """Total lag of `group` on `topic`, read through the bus's admin view (the sampler never joins the group)."""

    def lag() -> int:
        return sum(bus.group_lag(group, topic).values())

    return lag


class LagPacedProducer:
    def __init__(
        self,
        sampler: LiveSampler,
        lag: LagReader,
        lag_target: int,
        batch: int,
        poll_s: float,
        refresh_s: float,
        limit: Callable[[int], int | None] = lambda n_seeds: None,
        budget: BudgetGate | None = None,
    ) -> None:
        self.sampler = sampler
        self.lag = lag
        self.lag_target = lag_target
        self.batch = batch
        self.poll_s = poll_s
        self.refresh_s = refresh_s
        self.limit_for = limit
        """Paths to emit in all, given the seeds of the first snapshot (None = run until stopped)."""
        self.limit: int | None = None
        self.budget = budget
        """Limits emission to what the budget left can pay for, and stops it when the budget is spent."""
        self.emitted = 0
        self.done = threading.Event()
        """Set once `limit` paths were emitted or the budget was spent (never set without either)."""
        self.stop_reason = ""
        """Why it stopped: the path limit, the budget (naming the limit and the spend), or 'stopped'."""

    def run(self, stop: threading.Event) -> None:
        # Wait for a first snapshot.
        while not stop.is_set() and self.sampler.sampler is None:
            if not self.sampler.refresh():
                stop.wait(self.poll_s)
        if stop.is_set():
            return
        self.limit = self.limit_for(self.sampler.sampler.snapshot.n_seeds)
        # The limit is a total: paths a previous run of this sampler emitted (restored from its state file) count.
        self.emitted = max(self.emitted, self.sampler.sampler.counters.paths_emitted)
        emitted_here = 0
        last_refresh = time.monotonic()
        unwalkable_version = -1
        try:
            while not stop.is_set():
                if self.limit is not None and self.emitted >= self.limit:
                    self._finish(f"path limit reached: {self.emitted} paths emitted")
                    return
                if time.monotonic() - last_refresh >= self.refresh_s:
                    self.sampler.refresh()
                    last_refresh = time.monotonic()
                try:
                    lag = self.lag()
                except BusError as e:
                    # The broker is unreachable for now: wait and ask again (paths cannot be produced either).
                    log.warning("sampler: reading the paths lag failed (%s); trying again", e)
                    stop.wait(max(self.poll_s, 1.0))
                    continue
                metrics.PATHS_LAG.labels(SERVICE).set(lag)
                n = min(self.lag_target - lag, self.batch)
                if self.limit is not None:
                    n = min(n, self.limit - self.emitted)
                if self.budget is not None:
                    allowed, reason = self.budget.check(lag, emitted_here)
                    if reason:
                        self._finish(reason)
                        return
                    if allowed is not None:
                        n = min(n, allowed)
                if n <= 0:
                    stop.wait(self.poll_s)
                    continue
                try:
                    emitted = self.sampler.emit(n)  # published: produced and stored
                    self.emitted += emitted
                    emitted_here += emitted
                except UnwalkableGraph as e:
                    # An early snapshot (the graph service snapshots on a timer, maybe before any edge exists):
                    # wait for a newer one instead of dying.
                    version = self.sampler.sampler.snapshot.version
                    if version != unwalkable_version:
                        log.warning("sampler: graph version %d cannot be walked yet (%s); waiting for a newer one",
                                    version, e)
                        unwalkable_version = version
                    stop.wait(self.poll_s)
                    if self.sampler.refresh():
                        last_refresh = time.monotonic()
                    continue
                except BusError as e:
                    # Not known to be stored, so not counted: the next round draws new paths. A bounded run may
                    # thus emit up to a batch more than its limit per failed publish (never fewer).
                    log.warning("sampler: publishing paths failed (%s); trying again", e)
                    stop.wait(max(self.poll_s, 1.0))
        finally:
            self.stop_reason = self.stop_reason or "stopped"
            self.sampler.persist()
            if self.budget is not None:
                self.budget.follower.close()

    def _finish(self, reason: str) -> None:
        log.info("sampler: stopping after %d paths: %s", self.emitted, reason)
        self.stop_reason = reason
        self.done.set()
