"""The budget as the sampler sees it: how many paths it may emit now, and when to stop.

The spend comes from the usage topic (every replica of every spending service, linksyn.common.spend); the sampler
never asks another service. While a limit has room, it emits only as many paths as that room is projected to pay
for, at the spend per path the path consumer (`sampler.budget_service`, the synth) has shown so far, counting the
paths already emitted and not yet done (the lag): so the paths in flight when the budget runs out are about what it
could still pay for, and a run overshoots by at most the error of that projection; no more than half the room left
is in flight at once, so that error is re-measured as the room shrinks. Paths done whose spend no usage
report carries yet count as in flight (emitted here minus the records the spender reported; after a restart of the
sampler, or with several samplers, only the lag counts). It first emits budget.first_paths and projects only once
the reports of all of them are in (one path's cost alone was too rough). It stops (with the reason) once a limit
is spent, or once the room left cannot pay for one more path and nothing is in flight.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from linksyn.common.spend.config import BudgetConfig
from linksyn.common.spend.follow import UsageFollower
from linksyn.common.spend.ledger import UsageLedger, active_limits, budget_exhausted, format_amount
from linksyn.common.spend import metrics

SERVICE = "sampler"


class BudgetGate:
    def __init__(
        self, budget: BudgetConfig, follower: UsageFollower, spender: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = budget
        self.follower = follower
        self.spender = spender
        self.clock = clock
        self._seen_version = -1
        self._quiet_since = 0.0

    def check(self, lag: int, emitted: int) -> tuple[int | None, str | None]:
        """(paths that may be emitted now, None = no limit applies; the stop reason, None = go on), given the paths
        emitted and not yet done (`lag`) and emitted in all by this sampler (`emitted`)."""
        ledger = self.follower.poll()
        self._gauges(ledger)
        reason = budget_exhausted(self.budget, ledger)
        if reason:
            return 0, reason
        spender = ledger.spend(self.spender)
        allowed: int | None = None
        binding = ""
        for lim in active_limits(self.budget):
            if lim.scope not in ("run", self.spender):
                continue  # a limit on another service: paths do not spend it (it stops the run once reached)
            left = lim.limit - lim.spent(ledger)
            if spender.records < min(self.budget.first_paths, max(emitted, 1)):
                # The first batch measures a path's cost: its paths cost more or less with their seeds and requests,
                # so the projection waits for the reports of all of them (fewer on a graph that had fewer to walk).
                n = self.budget.first_paths - emitted
            else:
                per_path = spender.measure(lim.money) / spender.records
                if per_path <= 0:
                    continue
                # Not yet paid for: the paths in flight, and those done whose spend no report has carried yet (a
                # report comes every report_every_s; counting by the lag alone overshot by 2.3 paths).
                unpaid = max(lag, emitted - spender.records)
                # At most half the room in flight at once: paths differ in cost (a run's first 4 cost 0.69 each, its
                # next 4 1.4), so each round re-measures before committing the rest, and the last paths go one by one.
                room = left / per_path
                n = min(math.floor(room), math.ceil(room / 2)) - unpaid
                binding = (f"{format_amount(left, lim.money, self.budget.currency)} left of {lim.name} cannot pay "
                           f"for another path (about {format_amount(per_path, lim.money, self.budget.currency)} "
                           f"per path so far)")
            allowed = n if allowed is None else min(allowed, n)
        if allowed is not None and allowed <= 0 and lag == 0:
            # Nothing in flight and no room: stop once the spend has settled (the last reports are in).
            now = self.clock()
            if ledger.version != self._seen_version:
                self._seen_version, self._quiet_since = ledger.version, now
            elif now - self._quiet_since >= 2 * self.budget.report_every_s + 1.0:
                return 0, "budget reached: " + (binding or f"no path paid for after {emitted} emitted")
        return allowed, None

    def _gauges(self, ledger: UsageLedger) -> None:
        for lim in active_limits(self.budget):
            labels = (SERVICE, lim.scope, "cost" if lim.money else "tokens")
            spent = lim.spent(ledger)
            metrics.BUDGET_LIMIT.labels(*labels).set(lim.limit)
            metrics.BUDGET_SPENT.labels(*labels).set(spent)
            metrics.BUDGET_LEFT.labels(*labels).set(max(0.0, lim.limit - spent))
