"""Trainer -> sampler feedback through the bus: synthesized QA starts a run in the trainer service, the finished
checkpoint is probed on a fixture benchmark by the trainer's probe code, the ProbeReport is published on the probes
topic, and the sampler service consuming that topic moves its discipline and difficulty targets toward the weak
buckets. Both services are wired by their own build(); on the in-memory bus and on the Tansu broker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from linksyn.common.runtime.loop import ConsumerLoop
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.config import LinksynConfig
from linksyn.registry import build_service
from linksyn.sampler.targets import Deficit, shift_targets
from linksyn.v1 import records_pb2

from tests.sampler.sampler_graphs import build_snapshot, random_seeds
from tests.trainer.conftest import wait_for, write_dataset
from tests.trainer.test_probes import write_mmlu


def test_trainer_probe_report_moves_sampler_targets(tmp_path: Path, tiny_spec: str, bus_kind: str, make_bus,
                                                    unique_topic, unique_group) -> None:
    # A graph whose disciplines include the fixture benchmark's (college_physics -> physics, biology -> biology).
    store = SnapshotStore(str(tmp_path / "graph"))
    store.write(build_snapshot(random_seeds(300, 60, np.random.default_rng(0), ("physics", "biology", "history"))))
    bench = write_mmlu(tmp_path / "mmlu" / "test")
    cfg = LinksynConfig.model_validate({
        "bus": {"kind": bus_kind, "topics": {"partitions": 1, "synth_qa": unique_topic("synth-qa"),
                                             "probes": unique_topic("probes"), "paths": unique_topic("paths")}},
        "runtime": {"batch_wait_s": 0.01},
        "sampler": {"snapshot_store": str(tmp_path / "graph"), "probe_step": 0.2},
        "trainer": {
            "model": tiny_spec, "dataset": str(write_dataset(tmp_path / "dataset")), "out_dir": str(tmp_path / "runs"),
            "start_after_tokens": 20, "device": "cpu",
            "data": {"seq_len": 32}, "train": {"max_steps": 2, "micro_batch": 2},
            # Target 1.0: every bucket the model does not answer perfectly has a positive deficit.
            "probe": {"benchmarks": [f"mmlu:{bench}"], "target_accuracy": 1.0},
        },
    })
    bus = make_bus(bus_kind)
    bus.ensure_topics(cfg.bus.topics.all_partitions())
    trainer = build_service("trainer", cfg, bus)
    sampler = build_service("sampler", cfg, bus)
    service = sampler.background[0].sampler
    service.refresh()
    before = service.sampler.resolved_target_dicts()
    reader = bus.consumer(unique_group("probe-reader"), [cfg.bus.topics.probes])
    loops = [ConsumerLoop(bus, trainer.stage, cfg.runtime, cfg.bus.topics, unique_group("trainer")).start(),
             ConsumerLoop(bus, sampler.stage, cfg.runtime, cfg.bus.topics, unique_group("sampler")).start()]
    try:
        qa = records_pb2.SynthQA(id="q0", question="What is the SI unit of force? " * 4, answer="The newton. " * 4)
        bus.produce(cfg.bus.topics.synth_qa, qa.SerializeToString(), key=qa.id.encode())
        bus.flush()
        ctrl = trainer.stage.controller
        run = next(iter(wait_for(lambda: ctrl.runs, what="a run started").values()))
        wait_for(lambda: run.state in ("succeeded", "failed"), what="the run finished")
        assert run.state == "succeeded", run.error
        [msg] = wait_for(lambda: reader.poll(timeout_s=0.5), what="a ProbeReport on the probes topic")
        report = records_pb2.ProbeReport.FromString(msg.value)
        assert report.run_id == run.run_id
        buckets = {(b.discipline, b.difficulty): b for b in report.buckets}
        assert set(buckets) == {("physics", 4), ("biology", 3)} and sum(b.n for b in report.buckets) == 3
        deficits = [Deficit(b.discipline, b.difficulty, b.deficit) for b in report.buckets]
        assert any(d.deficit > 0 for d in deficits), "the tiny model answered everything: nothing to steer"
        want = shift_targets(*before, deficits, 0.2)
        after = wait_for(lambda: (t := service.sampler.resolved_target_dicts()) != before and t,
                         what="the sampler's targets moved")
        for got, expected in zip(after, want):
            assert got == pytest.approx(expected)
        # Mass moved toward the weak disciplines and away from the one the probe does not cover.
        weak = {d.discipline for d in deficits if d.deficit > 0}
        assert all(after[0][d] > before[0][d] for d in weak)
        assert after[0]["history"] < before[0]["history"]
    finally:
        for loop in loops:
            loop.stop()
        reader.close()
        trainer.close()
        sampler.close()
