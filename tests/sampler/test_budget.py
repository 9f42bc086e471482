"""The sampler's budget gate: the first paths, then only what the budget left is projected to pay for; stopping."""

from __future__ import annotations

from linksyn.common.spend import BudgetConfig, UsageLedger
from linksyn.common.spend.config import ServiceBudget
from linksyn.sampler.budget import BudgetGate
from linksyn.v1 import records_pb2


class LedgerFollower:
    """A follower whose ledger the test fills (the real one reads the usage topic: tests/common/spend)."""

    def __init__(self) -> None:
        self.ledger = UsageLedger()

    def poll(self, timeout_s: float = 0.0) -> UsageLedger:
        return self.ledger

    def spend(self, service: str, tokens: int, records: int, cost: float = 0.0) -> None:
        self.ledger.add(records_pb2.UsageReport(service=service, replica="r", model="m", requests=records,
                                                prompt_tokens=tokens, cost=cost, records=records,
                                                unix_ms=self.ledger.version + 1))

    def close(self) -> None:
        pass


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_first_paths_then_what_the_room_left_pays_for_then_stop():
    f, clock = LedgerFollower(), Clock()
    gate = BudgetGate(BudgetConfig(max_tokens=10_000, first_paths=8, report_every_s=1.0), f, "synth", clock)
    assert gate.check(lag=0, emitted=0) == (8, None)
    assert gate.check(lag=8, emitted=8) == (0, None)  # nothing paid for yet: wait for the first spend
    f.spend("synth", tokens=2000, records=4)  # 500 per path so far, half of the first batch in flight
    assert gate.check(lag=4, emitted=8) == (0, None)  # no projection from part of the first batch
    f.spend("synth", tokens=3000, records=6)  # none in flight, but the last reports are not in yet
    assert gate.check(lag=0, emitted=8) == (0, None)
    f.spend("synth", tokens=4000, records=8)  # the first batch paid for: 500 per path
    assert gate.check(lag=0, emitted=8) == (6, None)  # room for 12: half of it at once
    # Done but not reported yet counts as in flight: 6 emitted since, 1 in flight, 3 done without a report.
    f.spend("synth", tokens=5000, records=10)
    assert gate.check(lag=1, emitted=14) == (5 - 4, None)  # room for 10: 5 at once, 4 of them unpaid
    f.spend("synth", tokens=9000, records=18)  # room for 2: one at a time
    assert gate.check(lag=0, emitted=18) == (1, None)
    f.spend("synth", tokens=9800, records=19)  # ~516 per path: 200 left pays for no path
    allowed, reason = gate.check(lag=0, emitted=20)
    assert allowed <= 0 and reason is None  # the last reports may still be coming
    clock.now += 3.1
    allowed, reason = gate.check(lag=0, emitted=20)
    assert reason.startswith("budget reached: 200 tokens left of budget.max_tokens cannot pay for another path")


def test_a_spent_limit_stops_at_once_whoever_spent_it():
    f = LedgerFollower()
    gate = BudgetGate(BudgetConfig(services={"extractor": ServiceBudget(max_cost=1.0)}), f, "synth")
    assert gate.check(0, 0) == (None, None)  # a limit on another service does not ration paths
    f.spend("extractor", tokens=10, records=10, cost=1.5)
    assert gate.check(0, 0) == (0, "budget reached: budget.services.extractor.max_cost=1.0000 USD, spent 1.5000 USD")
