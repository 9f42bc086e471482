"""The trainer service end to end on the in-memory bus: SynthQA records arrive, a run starts once enough tokens
came in, trains a real (tiny) model in-process, probes it on a fixture benchmark, and a ProbeReport lands on
linksyn.probes; gRPC StartRun/RunStatus/Probe answer through a real server."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from linksyn.common.bus import InMemoryBus
from linksyn.common.config import ServerConfig
from linksyn.common.runtime.grpc_server import build_grpc_server
from linksyn.common.runtime.loop import ConsumerLoop
from linksyn.config import LinksynConfig
from linksyn.registry import build_service
from linksyn.v1 import records_pb2, trainer_pb2, trainer_pb2_grpc

from tests.trainer.conftest import wait_for, write_dataset
from tests.trainer.test_probes import write_mmlu


def service_cfg(tmp_path: Path, tiny_spec: str) -> LinksynConfig:
    bench = write_mmlu(tmp_path / "mmlu" / "test")
    return LinksynConfig.model_validate({
        "runtime": {"batch_wait_s": 0.01},
        "trainer": {
            "model": tiny_spec, "dataset": str(write_dataset(tmp_path / "dataset")), "out_dir": str(tmp_path / "runs"),
            "start_after_tokens": 50, "device": "cpu",
            "data": {"seq_len": 32}, "train": {"max_steps": 3, "micro_batch": 2, "checkpoint_every": 2},
            "probe": {"benchmarks": [f"mmlu:{bench}"], "target_accuracy": 0.9},
        },
    })


def test_enough_tokens_start_a_run_whose_probe_report_is_published(tmp_path: Path, tiny_spec: str) -> None:
    cfg = service_cfg(tmp_path, tiny_spec)
    bus = InMemoryBus()
    bus.ensure_topics(cfg.bus.topics.all_partitions())
    parts = build_service("trainer", cfg, bus)
    loop = ConsumerLoop(bus, parts.stage, cfg.runtime, cfg.bus.topics, "linksyn.trainer").start()
    reports = bus.consumer("probe-reader", [cfg.bus.topics.probes])
    try:
        for i in range(3):  # 3 x ~25 tokens: the run starts after the second record crosses 50
            qa = records_pb2.SynthQA(id=f"q{i}", question="What is the unit of force? " * 4, answer="newton " * 4)
            bus.produce(cfg.bus.topics.synth_qa, qa.SerializeToString(), key=qa.id.encode())
        ctrl = parts.stage.controller
        wait_for(lambda: ctrl.runs)
        run = next(iter(ctrl.runs.values()))
        wait_for(lambda: run.state in ("succeeded", "failed"), timeout=300)
        assert run.state == "succeeded", run.error
        assert run.step == 3 and Path(run.checkpoint, "config.json").exists()
        msgs = wait_for(lambda: reports.poll(timeout_s=0.5))
        report = records_pb2.ProbeReport.FromString(msgs[0].value)
        assert report.run_id == run.run_id
        assert sum(b.n for b in report.buckets) == 3  # the fixture benchmark's 3 questions
        assert all(b.deficit == pytest.approx(0.9 - b.accuracy) for b in report.buckets)
        assert len(ctrl.runs) == 1  # the third record did not start a second run
    finally:
        loop.stop()
        parts.close()
        bus.close()


def test_grpc_start_status_and_probe(tmp_path: Path, tiny_spec: str) -> None:
    cfg = service_cfg(tmp_path, tiny_spec)
    bus = InMemoryBus()
    parts = build_service("trainer", cfg, bus)
    server, port = build_grpc_server(parts, ServerConfig(host="127.0.0.1", grpc_port=0))
    server.start()
    try:
        stub = trainer_pb2_grpc.TrainerServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        started = stub.StartRun(trainer_pb2.StartRunRequest(max_steps=2))
        assert started.state in ("pending", "running") and started.max_steps == 2
        with pytest.raises(grpc.RpcError) as busy:
            stub.StartRun(trainer_pb2.StartRunRequest(max_steps=2))
        assert busy.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        done = wait_for(lambda: (s := stub.RunStatus(trainer_pb2.RunStatusRequest(run_id=started.run_id)))
                        .state in ("succeeded", "failed") and s, timeout=300)
        assert done.state == "succeeded" and done.step == 2, done.error
        with pytest.raises(grpc.RpcError) as missing:
            stub.RunStatus(trainer_pb2.RunStatusRequest(run_id="nope"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert done.kind == "train" and sum(b.n for b in done.probe_report.buckets) == 3  # the run's own probe
        probing = stub.Probe(trainer_pb2.ProbeRequest(checkpoint=f"hf:{done.checkpoint}"))
        assert probing.kind == "probe" and probing.state in ("pending", "running")  # returned before it ran
        assert not probing.HasField("probe_report")
        probed = wait_for(lambda: (s := stub.RunStatus(trainer_pb2.RunStatusRequest(run_id=probing.run_id)))
                          .state in ("succeeded", "failed") and s, timeout=300)
        assert probed.state == "succeeded", probed.error
        assert sum(b.n for b in probed.probe_report.buckets) == 3
    finally:
        server.stop(0)
        parts.close()
        bus.close()
