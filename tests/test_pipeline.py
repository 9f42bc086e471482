"""The embedded pipeline's machinery: stage discovery, ordering, draining, dead letters, the report.

The real stages live in their own services; here small test stages (tests/fixtures/pipeline_stages) stand
in so the pipeline's own behaviour is checked whatever stages this build has. They are test doubles of the
*stages*, run on the real InMemoryBus and ConsumerLoop.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from linksyn import pipeline, registry
from linksyn.common.seeds import SeedReader
from linksyn.config import LinksynConfig
from linksyn.pipeline import (
    STATUS_FAILED,
    STATUS_NOT_AVAILABLE,
    STATUS_RAN,
    STATUS_SKIPPED,
    STATUS_TIMED_OUT,
    PipelineError,
    SeedInput,
    run_pipeline,
    select_stages,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "seeds"

# annotate: seeds -> seed-kps (AnnotatedSeed, one KP per question word); a question containing POISON fails
# permanently (dead letter). collect: consumes seed-kps; its background producer starts after annotate finished,
# records how many seed-kps existed then, and emits that many WalkPaths.


@pytest.fixture
def test_stages(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """linksyn.registry.SERVICES pointing at tests/fixtures/pipeline_stages (fresh module state per test)."""
    monkeypatch.syspath_prepend(str(FIXTURES.parent))
    for mod in [m for m in sys.modules if m == "pipeline_stages" or m.startswith("pipeline_stages.")]:
        monkeypatch.delitem(sys.modules, mod)
    from pipeline_stages import SERVICES, STAGES

    monkeypatch.setattr(registry, "SERVICES", SERVICES)
    return STAGES


def fast_cfg() -> LinksynConfig:
    cfg = LinksynConfig()
    cfg.bus.topics.partitions = 3
    cfg.runtime.batch_wait_s = 0.01
    cfg.runtime.commit_interval_s = 0.1
    cfg.runtime.shutdown_timeout_s = 5
    return cfg


def seeds_with_poison(tmp_path: Path) -> SeedInput:
    path = tmp_path / "seeds.jsonl"
    rows = [{"question": f"Question number {i} about topic {i % 4}", "answer": str(i)} for i in range(20)]
    rows.append({"question": "A POISON question", "answer": "x"})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    return SeedInput(SeedReader([path]))


def test_stages_run_in_order_and_the_report_counts_everything(test_stages, tmp_path: Path):
    out = tmp_path / "out"
    seeds = seeds_with_poison(tmp_path)
    report = run_pipeline(fast_cfg(), seeds, out, ["annotate", "collect"], timeout_s=60, echo=lambda _: None)
    assert report == json.loads((out / "report.json").read_text())
    assert report["status"] == "ok", report.get("error")
    assert report["seeds_in"] == 21
    assert report["seeds_rejected"]["count"] == 1
    [row] = report["seeds_rejected"]["rows"]
    assert row["line"] == 22 and row["reason"].startswith("invalid JSON")
    # The poisoned seed is dead-lettered by annotate, with its reason; the other 20 flow on.
    assert report["dead_letters"]["count"] == 1
    [dl] = report["dead_letters"]["records"]
    assert (dl["service"], dl["topic"], dl["error"]) == ("annotate", "linksyn.seeds", "poisoned seed")
    stages = report["stages"]
    assert stages["annotate"]["counts"]["records_in"] == 21
    assert stages["annotate"]["counts"]["records_out"] == 20
    assert stages["annotate"]["counts"]["dead_letters"] == 1
    assert stages["collect"]["counts"]["records_in"] == 20
    # A stage's own totals (why the synth dropped what it dropped) reach the report; a stage without them has none.
    assert stages["annotate"]["totals"] == {"annotated": 20, "drop:poison": 1}
    assert "totals" not in stages["collect"]
    # What a stage's Stats RPC reports as its details at the end, and the probe reports of the run, are kept.
    assert stages["collect"]["details"] == {"kps_seen": 2 + 20}  # "question", "number" and the 20 numbers
    assert "details" not in stages["annotate"]  # it has no servicer
    assert report["probes"] == [{"run_id": "r1", "checkpoint": "ckpt-1", "benchmarks": ["mmlu:x"], "created_unix_ms": 5,
                                 "buckets": [{"discipline": "math", "difficulty": 3, "n": 10, "accuracy": 0.4,
                                              "deficit": 0.1}]}]
    assert report["stages_ran"] == ["annotate", "collect"]
    assert stages["absent"]["status"] == "not selected"
    # collect's producer started only after annotate had finished, so it saw every annotated seed.
    from pipeline_stages import collect

    assert collect.SEEN_AT_START == [20]
    assert report["topics"]["linksyn.paths"] == 20
    assert report["topics"]["linksyn.seeds"] == 21
    assert stages["annotate"]["finished_after_s"] <= stages["collect"]["finished_after_s"]
    # Why the run ended: its producer's own reason, in the stage and for the run.
    assert stages["collect"]["stop_reason"] == "emitted 20 paths"
    assert report["stop_reason"] == "collect: emitted 20 paths"
    assert 0 <= stages["collect"]["active_s"] <= stages["collect"]["wall_s"]


def test_a_stage_not_in_the_build_is_reported_and_downstream_skipped(test_stages, tmp_path: Path):
    report = run_pipeline(
        fast_cfg(), seeds_with_poison(tmp_path), tmp_path / "out", ["annotate", "absent", "collect"],
        timeout_s=60, echo=lambda _: None,
    )
    assert report["status"] == "ok"
    assert report["stages"]["absent"] == {
        "status": STATUS_NOT_AVAILABLE, "reason": "pipeline_stages.absent is not in this build",
    }
    assert report["stages_not_available"] == ["absent"]
    assert report["stages"]["collect"]["status"] == STATUS_SKIPPED
    assert "absent" in report["stages"]["collect"]["reason"]
    assert report["stages_ran"] == ["annotate"]
    assert report["topics"]["linksyn.seed-kps"] == 20


def test_a_failing_build_fails_the_run_before_any_seed_is_read(test_stages, tmp_path: Path):
    seeds = seeds_with_poison(tmp_path)
    report = run_pipeline(fast_cfg(), seeds, tmp_path / "out", ["annotate", "broken_build", "collect"], echo=lambda _: None)
    assert report["status"] == "failed"
    assert report["stages"]["broken_build"]["status"] == STATUS_FAILED
    assert "model file missing: /nowhere/model.gguf" in report["stages"]["broken_build"]["reason"]
    assert report["stages"]["collect"]["status"] == STATUS_SKIPPED
    assert report["seeds_in"] == 0 and seeds.reader.read_count == 0
    from pipeline_stages.annotate import CLOSED

    assert CLOSED == ["annotate"]  # built, never started, and still released


def test_a_broken_import_is_a_failure_not_absence(test_stages, tmp_path: Path):
    with pytest.raises(ModuleNotFoundError, match="linksyn_no_such_dependency"):
        registry.import_app("broken_import")
    with pytest.raises(registry.StageUnavailable):
        registry.import_app("absent")
    report = run_pipeline(fast_cfg(), seeds_with_poison(tmp_path), tmp_path / "out", ["broken_import"], echo=lambda _: None)
    assert report["status"] == "failed"
    assert report["stages"]["broken_import"]["status"] == STATUS_FAILED
    assert "linksyn_no_such_dependency" in report["stages"]["broken_import"]["reason"]


def test_timeout_stops_a_stage_that_never_finishes(test_stages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pipeline, "PROGRESS_EVERY_S", 0.5)
    lines: list[str] = []
    report = run_pipeline(
        fast_cfg(), seeds_with_poison(tmp_path), tmp_path / "out", ["annotate", "forever"], timeout_s=2, echo=lines.append
    )
    assert any(x.startswith("annotate: finished after") for x in lines), lines
    assert any(x.startswith("forever: running for") and "1 background loop(s) producing" in x for x in lines), lines
    assert report["status"] == STATUS_TIMED_OUT
    assert report["stages"]["annotate"]["status"] == STATUS_RAN
    assert report["stages"]["forever"]["status"] == STATUS_TIMED_OUT


def test_progress_lines_give_records_rates_outputs_and_time_left():
    from linksyn.pipeline import ProgressSample, StageProgress

    p = StageProgress.start(ProgressSample(done=0, total=40, in_flight=0, out=0, tokens=0, cost=0.0), now=100.0)
    line = p.describe(ProgressSample(done=10, total=40, in_flight=4, out=7, tokens=3000, cost=0.012), 200.0, "QA kept")
    assert line == ("10/40 records done (25%), 4 in flight, 30.0 tokens/s, 7 QA kept, cost 0.0120, "
                    "about 5m00s left")
    waiting = p.describe(ProgressSample(done=0, total=40, in_flight=40, out=0, tokens=0, cost=0.0), 130.0, "QA kept")
    assert waiting.endswith("time left unknown until a record finishes")


def test_select_stages_orders_and_validates(test_stages):
    assert select_stages(["collect", " annotate"]) == ["annotate", "collect"]
    with pytest.raises(PipelineError, match="unknown service\\(s\\) 'nope'"):
        select_stages(["nope"])
    with pytest.raises(PipelineError, match="no stages selected"):
        select_stages([""])


def test_embedded_config_puts_state_under_out_unless_configured(tmp_path: Path):
    from linksyn.pipeline import embedded_config

    cfg = LinksynConfig()
    cfg.bus.kind = "kafka"
    cfg.sink.output_dir = "s3://bucket/qa"  # explicitly configured: kept
    got = embedded_config(cfg, tmp_path)
    assert got.bus.kind == "memory" and cfg.bus.kind == "kafka"  # a copy; the caller's config is untouched
    assert got.graph.snapshot_url == str(tmp_path / "graph")
    assert got.sink.output_dir == "s3://bucket/qa"
    assert got.trainer.dataset == str(tmp_path / "dataset") and got.trainer.out_dir == str(tmp_path / "trainer")
    assert got.sampler.state_path == str(tmp_path / "sampler-state.json")
    # Finite: 2 paths per seed unless the configuration bounds the sampler itself; the sampler reads the run's graph.
    assert got.sampler.paths_per_seed == 2 and got.section("sampler").snapshot_store == str(tmp_path / "graph")
    cfg.sampler.max_paths = 16
    assert embedded_config(cfg, tmp_path).sampler.paths_per_seed == 0


def test_run_pipeline_refuses_a_previous_run(test_stages, tmp_path: Path):
    from linksyn.pipeline import OutputExistsError

    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_pipeline(fast_cfg(), seeds_with_poison(tmp_path), tmp_path, ["annotate"], echo=lambda _: None)


def test_a_stage_that_commits_only_at_close_finishes_and_commits(test_stages, tmp_path: Path):
    report = run_pipeline(fast_cfg(), seeds_with_poison(tmp_path), tmp_path / "out", ["checkpoint"], timeout_s=60, echo=lambda _: None)
    assert report["status"] == "ok", report.get("error")
    counts = report["stages"]["checkpoint"]["counts"]
    assert counts["records_in"] == 21
    assert "uncommitted_after_stop" not in counts


def test_records_left_uncommitted_are_reported(test_stages, tmp_path: Path):
    report = run_pipeline(fast_cfg(), seeds_with_poison(tmp_path), tmp_path / "out", ["never_durable"], timeout_s=60, echo=lambda _: None)
    assert report["stages"]["never_durable"]["counts"]["uncommitted_after_stop"] == 21


def test_an_error_while_feeding_is_reported_and_stages_are_shut_down(test_stages, tmp_path: Path):
    class BrokenReader:
        sources: list = []
        rejected: list = []
        rejected_count = 0

        def __iter__(self):
            from linksyn.v1.records_pb2 import Seed

            yield Seed(id="s1", question="q", answer="a")
            raise OSError("disk went away")

    report = run_pipeline(fast_cfg(), SeedInput(BrokenReader()), tmp_path / "out", ["annotate"], timeout_s=30, echo=lambda _: None)
    assert report["status"] == "failed"
    assert report["error"] == "pipeline error: OSError: disk went away"
    assert report["seeds_in"] == 1
    assert report["stages"]["annotate"]["status"] == "failed"
    assert json.loads((tmp_path / "out" / "report.json").read_text())["status"] == "failed"


def test_each_stage_loop_gets_its_per_stage_runtime(test_stages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from linksyn.common.runtime import host as host_mod

    seen: dict[str, int] = {}

    class Recording(host_mod.ConsumerLoop):
        def __init__(self, bus, stage, cfg, topics, group):
            seen[stage.name] = cfg.batch_size
            super().__init__(bus, stage, cfg, topics, group)

    monkeypatch.setattr(host_mod, "ConsumerLoop", Recording)
    cfg = fast_cfg()
    cfg.runtime.batch_size = 16
    # the fixture's stages have their own names; the real ones are a Literal of the six service names
    monkeypatch.setattr(type(cfg.runtime), "for_stage",
                        lambda self, name: self.model_copy(update={"batch_size": 2}) if name == "annotate" else self)
    report = run_pipeline(cfg, seeds_with_poison(tmp_path), tmp_path / "out", ["annotate", "collect"], timeout_s=60,
                          echo=lambda _: None)
    assert report["status"] == "ok", report.get("error")
    assert seen == {"annotate": 2, "collect": 16}
