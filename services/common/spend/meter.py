"""The spending side: a service's LLM usage turned into metrics, stage totals and UsageReports on the usage topic.

A stage calls `tick()` from its consumer loop's tick (about once a second; a report goes out every
budget.report_every_s) and `report()` once more at close, so the last spend of a stopping replica is counted.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Callable, Sequence

from linksyn.common.bus.base import OutRecord
from linksyn.common.llm.base import LLM, TokenUsage
from linksyn.common.spend import metrics
from linksyn.common.spend.config import BudgetConfig
from linksyn.common.spend.ledger import cost_of
from linksyn.v1 import records_pb2

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[OutRecord]], None]


def replica_id() -> str:
    """A new id per process: host, pid and a random part (a restarted replica reports under a new id)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def usage_key(run: str, service: str, replica: str, model: str) -> bytes:
    """The record key of a usage report (what compaction keeps the latest of)."""
    return f"{run}/{service}/{replica}/{model}".encode()


class UsageMeter:
    """Cumulative usage of a service's LLMs per model, with its cost; metrics, totals and usage reports from it."""

    def __init__(
        self,
        service: str,
        llms: Sequence[LLM | None],
        budget: BudgetConfig,
        publish: Publish | None,
        topic: str,
        records: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.llms = [m for m in llms if m is not None]
        self.budget = budget
        self.publish = publish
        self.topic = topic
        self.records = records
        self.clock = clock
        self.replica = replica_id()
        missing = sorted({m.model_name for m in self.llms} - set(budget.prices))
        if budget.needs_prices() and missing:
            raise ValueError(
                f"{service}: a money budget (max_cost) is set but budget.prices has no price for model(s) "
                f"{', '.join(map(repr, missing))} (priced: {', '.join(map(repr, sorted(budget.prices))) or 'none'}); "
                "give each a price (0 for a free local model)"
            )
        self._counted: dict[str, tuple[int, int, float, int, int]] = {}
        """Per model: what the metrics already count (prompt, completion, cost, ok requests, failed requests)."""
        self._next_report = 0.0

    def usage(self) -> dict[str, TokenUsage]:
        """Cumulative usage per model name (a model used by two of the service's LLMs is summed)."""
        out: dict[str, TokenUsage] = {}
        for m in self.llms:
            u = m.usage.snapshot()
            t = out.setdefault(m.model_name, TokenUsage())
            t.requests += u.requests
            t.failed += u.failed
            t.prompt_tokens += u.prompt_tokens
            t.completion_tokens += u.completion_tokens
        return out

    def totals(self) -> dict[str, float]:
        """For a stage's totals (the run report): cost, and tokens and cost per model as `<what>:<model>`."""
        out: dict[str, float] = {"cost": 0.0}
        for model, u in self.usage().items():
            cost = cost_of(self.budget.prices, model, u.prompt_tokens, u.completion_tokens)
            out["cost"] += cost
            out[f"cost:{model}"] = cost
            out[f"prompt_tokens:{model}"] = u.prompt_tokens
            out[f"completion_tokens:{model}"] = u.completion_tokens
        return out

    def tick(self) -> None:
        if self.clock() >= self._next_report:
            self.report()

    def report(self) -> None:
        """Update the metrics and publish one UsageReport per model (a failed publish is tried at the next tick)."""
        self._next_report = self.clock() + self.budget.report_every_s
        records = int(self.records())
        out: list[OutRecord] = []
        now_ms = int(time.time() * 1000)
        for model, u in self.usage().items():
            cost = cost_of(self.budget.prices, model, u.prompt_tokens, u.completion_tokens)
            self._count(model, u, cost)
            r = records_pb2.UsageReport(
                run=self.budget.run, service=self.service, replica=self.replica, model=model, requests=u.requests,
                failed=u.failed, prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, cost=cost,
                records=records, unix_ms=now_ms,
            )
            out.append(OutRecord(self.topic, r.SerializeToString(),
                                 key=usage_key(self.budget.run, self.service, self.replica, model)))
        if out and self.publish is not None:
            try:
                self.publish(out)
            except Exception as e:  # noqa: BLE001 - reports are cumulative: the next one carries this one's news
                log.warning("%s: publishing usage reports failed (%s); trying again at the next report",
                            self.service, e)

    def _count(self, model: str, u: TokenUsage, cost: float) -> None:
        prompt, completion, counted_cost, ok, failed = self._counted.get(model, (0, 0, 0.0, 0, 0))
        labels = (self.service, model)
        metrics.TOKENS.labels(*labels, "prompt").inc(u.prompt_tokens - prompt)
        metrics.TOKENS.labels(*labels, "completion").inc(u.completion_tokens - completion)
        metrics.COST.labels(*labels).inc(max(0.0, cost - counted_cost))
        metrics.REQUESTS.labels(*labels, "ok").inc(u.requests - u.failed - ok)
        metrics.REQUESTS.labels(*labels, "failed").inc(u.failed - failed)
        self._counted[model] = (u.prompt_tokens, u.completion_tokens, cost, u.requests - u.failed, u.failed)
