"""Spend: the ledger of usage reports, the budget test, the meter of a spending service, the follower of the topic."""

from __future__ import annotations

import pytest
from linksyn.common.bus import InMemoryBus
from linksyn.common.llm.base import LLM, Completion
from linksyn.common.spend import BudgetConfig, Price, UsageFollower, UsageLedger, UsageMeter, budget_exhausted, cost_of
from linksyn.common.spend.config import ServiceBudget
from linksyn.v1 import records_pb2
from prometheus_client import REGISTRY


def report(service="synth", replica="r1", model="openai:m", requests=1, prompt=100, completion=10, cost=0.0,
           records=1, run="", unix_ms=1) -> records_pb2.UsageReport:
    return records_pb2.UsageReport(run=run, service=service, replica=replica, model=model, requests=requests,
                                   prompt_tokens=prompt, completion_tokens=completion, cost=cost, records=records,
                                   unix_ms=unix_ms)


def test_cost_is_per_million_tokens_and_unpriced_models_are_free():
    prices = {"openai:m": Price(prompt=0.5, completion=2.0)}
    assert cost_of(prices, "openai:m", 2_000_000, 500_000) == pytest.approx(2.0)
    assert cost_of(prices, "hf:other", 10**9, 10**9) == 0.0


def test_ledger_keeps_the_latest_cumulative_report_per_key_and_sums_keys():
    ledger = UsageLedger(run="r")
    assert ledger.add(report(run="r", requests=2, prompt=200, records=2, unix_ms=2))
    assert not ledger.add(report(run="r", requests=1, prompt=100, records=1, unix_ms=1))  # older: ignored
    assert not ledger.add(report(run="r", requests=2, prompt=200, records=2, unix_ms=2))  # redelivered: same
    assert not ledger.add(report(run="other", requests=50, prompt=10**6))  # another budget period
    ledger.add(report(run="r", replica="r2", requests=3, prompt=300, records=3))  # a second replica
    ledger.add(report(run="r", replica="r2", model="openai:refiner", requests=3, prompt=30, records=3))
    ledger.add(report(run="r", service="extractor", replica="e1", requests=5, prompt=500, records=5))
    synth = ledger.spend("synth")
    assert synth.prompt_tokens == 530 and synth.requests == 8
    assert synth.records == 2 + 3  # per replica, not per model
    assert ledger.spend().prompt_tokens == 1030
    assert set(ledger.by_service_model()) == {("synth", "openai:m"), ("synth", "openai:refiner"),
                                              ("extractor", "openai:m")}


def test_ledger_version_moves_only_when_the_sums_change():
    """Replicas report every second whether or not they spent; the budget gate's wait for a settled spend reads the
    version, so an unchanged report must not look like news (it kept a spent run from ever stopping)."""
    ledger = UsageLedger()
    assert ledger.add(report(unix_ms=1)) and ledger.version == 1
    assert ledger.add(report(unix_ms=2)) and ledger.version == 1  # the same sums, a later time: taken, no news
    assert ledger.add(report(requests=2, prompt=150, records=2, unix_ms=3)) and ledger.version == 2
    assert ledger.add(report(replica="r2", unix_ms=3)) and ledger.version == 3  # a new key is news
    assert ledger.spend("synth").requests == 3


def test_budget_exhausted_names_the_limit_and_the_spend():
    ledger = UsageLedger()
    ledger.add(report(prompt=900, completion=100, cost=0.25))
    assert budget_exhausted(BudgetConfig(max_tokens=1001), ledger) is None
    assert budget_exhausted(BudgetConfig(max_tokens=1000), ledger) == (
        "budget reached: budget.max_tokens=1000 tokens, spent 1000 tokens")
    assert "budget.services.synth.max_cost=0.2000 EUR, spent 0.2500 EUR" in budget_exhausted(
        BudgetConfig(currency="EUR", services={"synth": ServiceBudget(max_cost=0.2)}), ledger)
    assert budget_exhausted(BudgetConfig(services={"extractor": ServiceBudget(max_tokens=1)}), ledger) is None


class CountingLLM(LLM):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.model_name = name

    def generate(self, requests):
        out = [Completion(text="x", prompt_tokens=1000, completion_tokens=100) for _ in requests]
        for c in out:
            self.usage.add(c)
        return out


def test_meter_counts_metrics_by_delta_and_publishes_cumulative_reports():
    published: list = []
    gen, ref = CountingLLM("openai:gen"), CountingLLM("openai:ref")
    budget = BudgetConfig(prices={"openai:gen": Price(prompt=1.0, completion=10.0)}, run="r7")
    meter = UsageMeter("meter-test", [gen, ref], budget, published.extend, "usage", records=lambda: 4)
    gen.generate([None] * 3)
    meter.report()
    gen.generate([None] * 2)
    ref.generate([None])
    meter.report()
    tokens = lambda kind, model: REGISTRY.get_sample_value(  # noqa: E731
        "linksyn_llm_tokens_total", {"service": "meter-test", "model": model, "kind": kind})
    assert tokens("prompt", "openai:gen") == 5000 and tokens("completion", "openai:ref") == 100
    assert REGISTRY.get_sample_value("linksyn_llm_cost_total", {"service": "meter-test", "model": "openai:gen"}) == \
        pytest.approx(5 * (1000 * 1.0 + 100 * 10.0) / 1e6)
    last = {}
    for rec in published:
        r = records_pb2.UsageReport.FromString(rec.value)
        assert rec.key == f"r7/meter-test/{r.replica}/{r.model}".encode() and r.run == "r7" and r.records == 4
        last[r.model] = r
    assert last["openai:gen"].prompt_tokens == 5000 and last["openai:ref"].requests == 1
    assert meter.totals()["cost"] == pytest.approx(0.01) and meter.totals()["prompt_tokens:openai:ref"] == 1000


def test_a_money_budget_needs_a_price_for_every_model():
    with pytest.raises(ValueError, match="no price for model.*'openai:gen'"):
        UsageMeter("synth", [CountingLLM("openai:gen")], BudgetConfig(max_cost=1.0), None, "usage")
    UsageMeter("synth", [CountingLLM("openai:gen")], BudgetConfig(max_tokens=10), None, "usage")  # tokens: no price


def test_follower_reads_the_topic_from_its_beginning_and_keeps_up():
    bus = InMemoryBus()
    bus.ensure_topics({"usage": 1})
    bus.produce("usage", report(requests=1, prompt=100).SerializeToString())
    bus.produce("usage", b"\xff not a report")
    follower = UsageFollower(bus, "usage", "", "test")
    assert follower.poll(timeout_s=1.0).spend().prompt_tokens == 100 and follower.malformed == 1
    bus.produce("usage", report(requests=2, prompt=250, unix_ms=5).SerializeToString())
    assert follower.poll(timeout_s=1.0).spend().prompt_tokens == 250
    late = UsageFollower(bus, "usage", "", "test")  # a restarted reader rebuilds the same sums
    assert late.poll(timeout_s=1.0).spend().prompt_tokens == 250
    follower.close()
    late.close()
