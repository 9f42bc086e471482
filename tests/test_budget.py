"""A run with a budget (`linksyn run`'s pipeline, the real llama.cpp server behind the synth's `openai` backend):
the sampler stops emitting paths once the budget is spent, the paths in flight finish, the report says why it
stopped, and nothing is lost or duplicated."""

from __future__ import annotations

from pathlib import Path

import pytest
from linksyn.common.seeds import SeedReader
from linksyn.config import LinksynConfig
from linksyn.pipeline import SeedInput, run_pipeline
from linksyn.v1 import records_pb2

REPO = Path(__file__).resolve().parents[1]
PRICE = {"prompt": 1000.0, "completion": 4000.0}
"""Per million tokens: a path of about 700 prompt and 60 completion tokens costs about 0.94."""
MAX_COST = 6.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_a_run_stops_at_its_budget_and_loses_nothing(openai_server, tmp_path: Path):
    cfg = LinksynConfig.model_validate({
        "extractor": {"mode": "keyphrase"},  # no LLM tokens: the budget is the synth's to spend
        "synth": {"model": openai_server.spec, "max_tokens": 64, "max_copy_overlap": 1.0},
        "budget": {"prices": {f"openai:{openai_server.model_name}": PRICE}, "max_cost": MAX_COST,
                   "first_paths": 4},
    })
    lines: list[str] = []
    report = run_pipeline(cfg, SeedInput(SeedReader([REPO / "examples" / "seeds.jsonl"])), tmp_path / "run",
                          timeout_s=1500, echo=lines.append)
    assert report["status"] == "ok", (report.get("error"), lines)
    synth = report["stages"]["synth"]
    limit = report["stages"]["sampler"]
    # Why it stopped, in the run and in the sampler's stage; the run stopped before its path limit (2 per seed).
    assert report["stop_reason"].startswith("sampler: budget reached"), report["stop_reason"]
    assert limit["stop_reason"].startswith("budget reached")
    paths = report["paths"]
    assert 1 <= paths < 2 * report["seeds_in"]
    # Spent: the budget, overshooting by at most the error of the sampler's projection (stated in DESIGN.md: the
    # paths in flight when it ran out were those it could still pay for at the cost per path seen so far).
    cost, done = synth["totals"]["cost"], synth["totals"]["paths"]
    per_path = cost / done
    print(f"budget {MAX_COST}: spent {cost:.3f} on {paths} paths ({per_path:.3f} per path), overshoot "
          f"{cost - MAX_COST:+.3f} = {(cost - MAX_COST) / per_path:+.2f} paths; stop: {report['stop_reason']}")
    assert cost >= MAX_COST - 2 * per_path  # it did not stop early for nothing
    assert cost <= MAX_COST + 2 * per_path, (cost, per_path)
    assert synth["totals"][f"cost:openai:{openai_server.model_name}"] == pytest.approx(cost)
    # Nothing in flight lost: every emitted path was read, finished (QA or drops, or dead-lettered) and committed.
    assert synth["counts"]["records_in"] == paths and "uncommitted_after_stop" not in synth["counts"]
    assert done + synth["counts"].get("dead_letters", 0) >= paths
    # Nothing duplicated: every QA the synth produced reached the sink once (kept, or dropped with a reason).
    sink = report["stages"]["sink"]
    assert sink["counts"]["records_in"] == report["synthesized"] == synth["counts"]["records_out"]
    assert "uncommitted_after_stop" not in sink["counts"]
    card = (tmp_path / "run" / "dataset" / "README.md").read_text()
    assert "## LLM spend" in card and f"openai:{openai_server.model_name}" in card


def test_usage_reports_of_the_run_add_up_to_the_stage_totals(openai_server, tmp_path: Path):
    """What the sampler and the card read (the usage topic) is what the synth counted."""
    from linksyn.common.bus.memory import InMemoryBus
    from linksyn.common.spend import BudgetConfig, Price, UsageFollower, UsageMeter
    from linksyn.common.llm import load_llm
    from linksyn.common.llm.base import ChatRequest, SamplingParams

    bus = InMemoryBus()
    bus.ensure_topics({"usage": 1})
    llm = load_llm(openai_server.spec, service="synth")
    prices = {llm.model_name: Price(**PRICE)}
    published = []

    def publish(records):
        published.extend(records)
        bus.produce_many(records)
        bus.flush()

    meter = UsageMeter("synth", [llm], BudgetConfig(prices=prices), publish, "usage", records=lambda: 3)
    try:
        llm.generate([ChatRequest(messages=({"role": "user", "content": f"Name a colour ({i})."},),
                                  params=SamplingParams(max_tokens=4)) for i in range(3)])
        meter.report()
        meter.report()  # cumulative: a second report replaces the first, it does not add to it
    finally:
        llm.close()
    spend = UsageFollower(bus, "usage", "", "test").poll(timeout_s=1.0).spend("synth")
    assert spend.requests == 3 and spend.records == 3
    assert spend.prompt_tokens == llm.usage.prompt_tokens and spend.completion_tokens == llm.usage.completion_tokens
    assert spend.cost == pytest.approx(meter.totals()["cost"]) and spend.cost > 0
    assert len(published) == 2 and records_pb2.UsageReport.FromString(published[-1].value).requests == 3
