"""Sums of UsageReports and the budget test (pure).

Reports are cumulative per (run, service, replica, model), so the latest one of each key is all that counts: a report
delivered twice, or out of order, changes nothing. A run's spend is the sum over keys; a restarted replica reports
under a new replica id, so its predecessor's last report keeps counting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from linksyn.common.spend.config import BudgetConfig, Price
from linksyn.v1 import records_pb2


def cost_of(prices: Mapping[str, Price], model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """What `model` cost for these tokens at `prices` (0 for a model without a price)."""
    p = prices.get(model)
    if p is None:
        return 0.0
    return (prompt_tokens * p.prompt + completion_tokens * p.completion) / 1e6


@dataclass
class Spend:
    """Tokens and money spent, and the input records finished for them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    requests: int = 0
    failed: int = 0
    records: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, r: records_pb2.UsageReport) -> None:
        self.prompt_tokens += r.prompt_tokens
        self.completion_tokens += r.completion_tokens
        self.cost += r.cost
        self.requests += r.requests
        self.failed += r.failed

    def measure(self, money: bool) -> float:
        """Cost when `money`, else tokens."""
        return self.cost if money else float(self.tokens)


class UsageLedger:
    """The latest report of every key of one run."""

    def __init__(self, run: str = "") -> None:
        self.run = run
        self._latest: dict[tuple[str, str, str], records_pb2.UsageReport] = {}
        self.version = 0
        """Bumped whenever a report changed the sums."""

    def add(self, r: records_pb2.UsageReport) -> bool:
        """Take a report; False if it is of another run or older than the one held for its key."""
        if r.run != self.run:
            return False
        key = (r.service, r.replica, r.model)
        held = self._latest.get(key)
        if held is not None and (held.requests, held.unix_ms) >= (r.requests, r.unix_ms):
            return False
        self._latest[key] = r
        # Replicas report every report_every_s whether or not they spent: only a change of the sums is news (the
        # sampler's budget gate waits for the spend to stay put before it stops).
        if held is None or _counted(held) != _counted(r):
            self.version += 1
        return True

    def spend(self, service: str | None = None) -> Spend:
        """Spend of one service (None: of the whole run); `records` sums each replica's latest count."""
        out = Spend()
        records: dict[tuple[str, str], int] = {}
        for (svc, replica, _), r in self._latest.items():
            if service is not None and svc != service:
                continue
            out.add(r)
            records[(svc, replica)] = max(records.get((svc, replica), 0), r.records)
        out.records = sum(records.values())
        return out

    def by_service_model(self) -> dict[tuple[str, str], Spend]:
        out: dict[tuple[str, str], Spend] = {}
        for (svc, _, model), r in self._latest.items():
            out.setdefault((svc, model), Spend()).add(r)
        return out

    def services(self) -> list[str]:
        return sorted({svc for svc, _, _ in self._latest})


def _counted(r: records_pb2.UsageReport) -> tuple:
    """What a report adds to the sums."""
    return r.prompt_tokens, r.completion_tokens, r.cost, r.requests, r.failed, r.records


@dataclass(frozen=True)
class Limit:
    """One active limit: what it bounds, its size, and whether it counts money or tokens."""

    scope: str
    """'run' or a service name."""
    money: bool
    limit: float

    @property
    def name(self) -> str:
        field = "max_cost" if self.money else "max_tokens"
        return f"budget.{field}" if self.scope == "run" else f"budget.services.{self.scope}.{field}"

    def spent(self, ledger: UsageLedger) -> float:
        return ledger.spend(None if self.scope == "run" else self.scope).measure(self.money)


def active_limits(budget: BudgetConfig) -> list[Limit]:
    out = []
    if budget.max_tokens:
        out.append(Limit("run", False, budget.max_tokens))
    if budget.max_cost:
        out.append(Limit("run", True, budget.max_cost))
    for svc, b in sorted(budget.services.items()):
        if b.max_tokens:
            out.append(Limit(svc, False, b.max_tokens))
        if b.max_cost:
            out.append(Limit(svc, True, b.max_cost))
    return out


def format_amount(value: float, money: bool, currency: str) -> str:
    return f"{value:.4f} {currency}" if money else f"{int(value)} tokens"


def budget_exhausted(budget: BudgetConfig, ledger: UsageLedger) -> str | None:
    """Why the budget is spent (naming the limit and the spend), or None while every limit has room."""
    for lim in active_limits(budget):
        spent = lim.spent(ledger)
        if spent >= lim.limit:
            return (f"budget reached: {lim.name}={format_amount(lim.limit, lim.money, budget.currency)}, "
                    f"spent {format_amount(spent, lim.money, budget.currency)}")
    return None
