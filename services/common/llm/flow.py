"""Flow control of the requests to one model's endpoints (the `openai` backend's base URLs).

Per endpoint:
- an adaptive concurrency limit (AIMD with a latency gradient): it starts at `initial_concurrency`, doubles per
  round of completions while nothing went wrong (slow start), then grows by one per round (additive increase); it
  is cut by `flow.decrease_factor` on an overload (HTTP 503, a 429 without Retry-After, a timeout, a server
  error) and by
  `flow.latency_decrease` when the median seconds per completion token of a round rise above
  `flow.latency_tolerance` times the median of the recent rounds' medians (a sudden rise: the server queues or
  slows down; the median, not the minimum, so that noise alone does not cut). At most one cut per round: a cut
  answers every request that was already in flight when it happened. The limit stays within
  [min_concurrency, max_concurrency]; in `fixed` mode it is max_concurrency, always;
- a Retry-After cool-down: in adaptive mode nothing is sent to an endpoint before the time its last 429/503 named,
  and then one request goes alone; the others follow once it is answered, or once it has been out longer than a
  turned-away request takes to come back (so it was let in). A 429 that says when to come back is a quota (a rate),
  not a lack of capacity: it pauses the endpoint but does not cut the limit, which must stay high enough to keep the
  let-in requests going while replies are slow (cutting on it measured at 0.45 of the allowed rate);
- a circuit breaker: `flow.circuit_failures` failures in a row open the circuit (no request is sent) for
  `flow.circuit_open_s`; then one probe request goes; its success closes the circuit, its failure opens it again for
  twice as long (at most `flow.circuit_max_open_s`).

Across endpoints (several base URLs serving one model) each request goes to the endpoint with the most free slots
relative to its limit among those that may send now, so load follows health: an endpoint that slows down or turns
requests away gets a smaller limit, hence a smaller share.

Pure state on one asyncio loop (no I/O, no threads): `EndpointPool.acquire()` waits for a slot and `Slot.release()`
reports how the attempt ended. The clock is injectable for tests.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Sequence

from linksyn.common.llm.config import LLMConfig

Clock = Callable[[], float]

ROUND_MIN = 4
"""Fewest completions in a latency round (a median of fewer is noise)."""
BASELINE_ROUNDS = 16
"""Round medians remembered for the latency baseline (their median); older rounds are forgotten, so the baseline
follows a lasting change of workload (longer replies, another prompt mix)."""


class Outcome(Enum):
    """How one attempt against an endpoint ended, as flow control sees it."""

    OK = "ok"
    """A reply (200)."""
    OVERLOADED = "overloaded"
    """Turned away for load (503, or 429 without a Retry-After): cut the limit, pause; not the endpoint's failure."""
    THROTTLED = "throttled"
    """Turned away by a quota (429 with a Retry-After): pause until then; the limit stays."""
    FAILED = "failed"
    """Timeout, connection error, other 5xx, malformed reply: counts toward opening the circuit, and backs off."""
    REJECTED = "rejected"
    """The request's own fault (a 4xx other than 429): says nothing about the endpoint's health."""


class CircuitState(Enum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class AdaptiveLimit:
    """The concurrency limit of one endpoint (see the module docstring)."""

    def __init__(self, cfg: LLMConfig) -> None:
        self.floor = cfg.min_concurrency
        self.ceiling = max(cfg.max_concurrency, self.floor)
        self.fixed = cfg.concurrency == "fixed"
        self.flow = cfg.flow
        self.limit = float(self.ceiling if self.fixed else min(max(cfg.initial_concurrency, self.floor), self.ceiling))
        self.slow_start = True
        self._issued = 0
        self._last_cut = 0
        """Tickets up to this one were in flight at the last cut: their overloads do not cut again."""
        self._round: list[float] = []
        self._round_size = ROUND_MIN
        self._medians: deque[float] = deque(maxlen=BASELINE_ROUNDS)
        self.cuts = 0

    @property
    def slots(self) -> int:
        """Requests that may be in flight now."""
        return max(self.floor, int(self.limit))

    @property
    def baseline(self) -> float | None:
        """Median of the recent round medians of seconds per completion token (None before the first round)."""
        return statistics.median(self._medians) if self._medians else None

    def ticket(self) -> int:
        """Number a request as it is sent (cuts answer the requests sent before them)."""
        self._issued += 1
        return self._issued

    def on_success(self, ticket: int, seconds: float, completion_tokens: int) -> None:
        if self.fixed:
            return
        if not self._round:
            self._round_size = max(ROUND_MIN, math.ceil(self.limit))  # a round: the limit when it began
        self._round.append(seconds / max(1, completion_tokens))
        if len(self._round) >= self._round_size:
            median = statistics.median(self._round)
            self._round.clear()
            baseline = self.baseline
            self._medians.append(median)
            tolerance = self.flow.latency_tolerance
            if tolerance and baseline is not None and median > tolerance * baseline:
                self._cut(ticket, self.flow.latency_decrease)
                return
        # Slow start: +1 per completion doubles the limit every round; then +1 per round.
        self.limit = min(self.ceiling, self.limit + (1.0 if self.slow_start else 1.0 / self.limit))

    def on_overload(self, ticket: int) -> None:
        if not self.fixed:
            self._cut(ticket, self.flow.decrease_factor)

    def _cut(self, ticket: int, factor: float) -> None:
        if ticket <= self._last_cut:
            return  # sent before the last cut: that cut already answered the load it was part of
        self.limit = max(float(self.floor), self.limit * factor)
        self.slow_start = False
        self._last_cut = self._issued
        self._round.clear()
        self.cuts += 1


class CircuitBreaker:
    """Opens after repeated failures, probes with one request before closing again."""

    def __init__(self, cfg: LLMConfig, clock: Clock) -> None:
        self.flow = cfg.flow
        self.clock = clock
        self.state = CircuitState.CLOSED
        self.failures = 0
        """Failures in a row."""
        self.open_for = self.flow.circuit_open_s
        self.opened_at = 0.0
        self.probing = False
        self.last_error = ""
        self.opened = 0
        """Times the circuit opened."""

    def reopens_at(self) -> float:
        return self.opened_at + self.open_for

    def may_send(self, now: float) -> bool:
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN and now >= self.reopens_at():
            self.state = CircuitState.HALF_OPEN
        return self.state is CircuitState.HALF_OPEN and not self.probing

    def on_send(self) -> None:
        if self.state is CircuitState.HALF_OPEN:
            self.probing = True

    def on_success(self) -> None:
        self.failures = 0
        self.probing = False
        self.state = CircuitState.CLOSED
        self.open_for = self.flow.circuit_open_s

    def on_neutral(self) -> None:
        """An attempt that says nothing about health (rejected, overloaded): a probe slot is freed."""
        if self.probing:
            self.probing = False

    def on_failure(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        if self.state is CircuitState.HALF_OPEN:
            self.probing = False
            self.open_for = min(self.open_for * 2, self.flow.circuit_max_open_s)
            self._open()
        elif self.state is CircuitState.CLOSED and self.failures >= self.flow.circuit_failures:
            self._open()

    def _open(self) -> None:
        self.state = CircuitState.OPEN
        self.opened_at = self.clock()
        self.opened += 1


@dataclass
class Endpoint:
    """One base URL and its flow state."""

    url: str
    limit: AdaptiveLimit
    circuit: CircuitBreaker
    in_flight: int = 0
    cool_until: float = 0.0
    """No request is sent before this time (a Retry-After), adaptive mode only."""
    overloads_in_row: int = 0
    """Overloaded replies since the last good one (the pause without a Retry-After doubles with each)."""
    after_cool: bool = False
    """A cool-down was set and no reply came back good since: the next request goes alone."""
    cool_probe: int = 0
    """The ticket of the request sent alone after a cool-down, while it is out (0: none)."""
    cool_probe_sent: float = 0.0
    turned_away_s: float = 0.05
    """Running mean of how long a turned-away request takes to come back (a probe out longer was let in)."""

    def probe_grace(self) -> float:
        return max(0.05, 3.0 * self.turned_away_s)

    def probe_blocks(self, now: float) -> bool:
        """The request sent alone after a cool-down is out and may still be turned away."""
        return bool(self.after_cool and self.cool_probe) and now < self.cool_probe_sent + self.probe_grace()
    counts: dict[str, int] = field(default_factory=lambda: {o.value: 0 for o in Outcome})

    def may_send(self, now: float) -> bool:
        return (
            self.in_flight < self.limit.slots
            and now >= self.cool_until
            and not self.probe_blocks(now)
            and self.circuit.may_send(now)
        )

    def on_send(self, ticket: int, now: float) -> None:
        self.circuit.on_send()
        self.in_flight += 1
        if self.after_cool and not self.cool_probe:
            self.cool_probe, self.cool_probe_sent = ticket, now

    def free_share(self) -> float:
        return (self.limit.slots - self.in_flight) / self.limit.slots

    def ready_at(self, now: float) -> float | None:
        """When this endpoint may send again if only time is missing (cool-down or an open circuit); None when it
        waits for a slot (a release wakes the waiters) or for a probe in flight."""
        times = []
        if self.cool_until > now:
            times.append(self.cool_until)
        if self.probe_blocks(now):
            times.append(self.cool_probe_sent + self.probe_grace())
        if self.circuit.state is CircuitState.OPEN:
            times.append(self.circuit.reopens_at())
        return max(times) if times else None


@dataclass
class Slot:
    """A permission to send one attempt to `endpoint`, to be released with the attempt's outcome."""

    pool: "EndpointPool"
    endpoint: Endpoint
    ticket: int
    sent_at: float
    released: bool = False

    def release(
        self, outcome: Outcome, *, completion_tokens: int = 0, retry_after_s: float | None = None, error: str = ""
    ) -> None:
        if self.released:
            return
        self.released = True
        self.pool._release(self, outcome, completion_tokens, retry_after_s, error)


class AllCircuitsOpen(Exception):
    """No endpoint accepted requests for `flow.circuit_wait_s`: every circuit stayed open."""


class EndpointPool:
    """The endpoints of one model, shared by every request of the backend (one asyncio loop)."""

    def __init__(
        self, urls: Sequence[str], cfg: LLMConfig, clock: Clock = time.monotonic,
        on_change: Callable[[Endpoint], None] = lambda e: None,
    ) -> None:
        if not urls:
            raise ValueError("an endpoint pool needs at least one base URL")
        self.cfg = cfg
        self.clock = clock
        self.adaptive = cfg.concurrency == "adaptive"
        self.endpoints = [Endpoint(u, AdaptiveLimit(cfg), CircuitBreaker(cfg, clock)) for u in urls]
        self._on_change = on_change
        self._cond: asyncio.Condition | None = None
        for e in self.endpoints:
            on_change(e)

    def pick(self, now: float) -> Endpoint | None:
        """The endpoint the next request goes to: the largest free share of its limit among those that may send."""
        best: Endpoint | None = None
        for e in self.endpoints:
            if e.may_send(now) and (best is None or e.free_share() > best.free_share()):
                best = e
        return best

    async def acquire(self) -> Slot:
        """Wait for a slot on some endpoint. AllCircuitsOpen when every endpoint's circuit stays open (no probe
        could be sent) for flow.circuit_wait_s."""
        if self._cond is None:
            self._cond = asyncio.Condition()
        cond = self._cond
        waited_on_circuits = 0.0
        async with cond:
            while True:
                now = self.clock()
                e = self.pick(now)
                if e is not None:
                    ticket = e.limit.ticket()
                    e.on_send(ticket, now)
                    self._on_change(e)
                    return Slot(self, e, ticket, now)
                wake = [t for t in (x.ready_at(now) for x in self.endpoints) if t is not None]
                timeout = max(0.0, min(wake) - now) if wake else None
                if all(x.circuit.state is not CircuitState.CLOSED for x in self.endpoints):
                    left = self.cfg.flow.circuit_wait_s - waited_on_circuits
                    if left <= 0:
                        raise AllCircuitsOpen(self.describe_circuits())
                    timeout = left if timeout is None else min(timeout, left)
                started = self.clock()
                try:
                    await asyncio.wait_for(cond.wait(), timeout)
                except TimeoutError:
                    pass
                if all(x.circuit.state is not CircuitState.CLOSED for x in self.endpoints):
                    waited_on_circuits += self.clock() - started

    def describe_circuits(self) -> str:
        return "; ".join(
            f"{e.url}: circuit {e.circuit.state.name.lower()} after {e.circuit.failures} failure(s) in a row"
            + (f", last: {e.circuit.last_error}" if e.circuit.last_error else "")
            for e in self.endpoints
        )

    def _release(
        self, slot: Slot, outcome: Outcome, completion_tokens: int, retry_after_s: float | None, error: str
    ) -> None:
        e = slot.endpoint
        e.in_flight -= 1
        e.counts[outcome.value] += 1
        now = self.clock()
        turned_away = outcome in (Outcome.OVERLOADED, Outcome.THROTTLED)
        e.overloads_in_row = e.overloads_in_row + 1 if turned_away else 0
        if e.cool_probe == slot.ticket:
            e.cool_probe = 0
        if turned_away:
            e.turned_away_s = 0.7 * e.turned_away_s + 0.3 * (now - slot.sent_at)
        else:
            e.after_cool = False
        if outcome is Outcome.OK:
            e.circuit.on_success()
            e.limit.on_success(slot.ticket, now - slot.sent_at, completion_tokens)
        elif turned_away:
            e.circuit.on_neutral()
            if outcome is Outcome.OVERLOADED or not self.adaptive:
                e.limit.on_overload(slot.ticket)
            if self.adaptive and retry_after_s:
                e.cool_until = max(e.cool_until, now + retry_after_s)
                e.after_cool = True
        elif outcome is Outcome.FAILED:
            e.circuit.on_failure(error)
            e.limit.on_overload(slot.ticket)
        else:
            e.circuit.on_neutral()
        self._on_change(e)
        if self._cond is not None:
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()
