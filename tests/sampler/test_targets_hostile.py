"""Targets from outside (issue 21): SetTargets and probe reports with infinite or NaN numbers are refused and leave
the targets as they were (a NaN share used to be accepted and poisoned every later draw)."""

from __future__ import annotations

import math

import grpc
import pytest
from linksyn.common.bus.base import Message
from linksyn.common.bus.memory import InMemoryBus
from linksyn.common.config import ServerConfig
from linksyn.common.runtime.grpc_server import build_grpc_server
from linksyn.v1 import records_pb2, sampler_pb2, sampler_pb2_grpc

from tests.sampler.test_app import build, config, store  # noqa: F401 (store is a fixture)

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("targets", [
    sampler_pb2.Targets(discipline={"math": NAN, "physics": 1}),
    sampler_pb2.Targets(discipline={"math": INF}),
    sampler_pb2.Targets(difficulty={"3": NAN}),
    sampler_pb2.Targets(difficulty={"2": -INF, "3": 1}),
    sampler_pb2.Targets(alpha=NAN),
    sampler_pb2.Targets(eta=INF),
], ids=["nan-share", "inf-share", "nan-grade", "minus-inf-grade", "nan-alpha", "inf-eta"])
def test_set_targets_refuses_numbers_that_are_not_finite(tmp_path, store, targets) -> None:  # noqa: F811
    parts = build(config(tmp_path, store), InMemoryBus())
    live = parts.servicers[0][1].live
    live.refresh()
    before = live.sampler.resolved_target_dicts()
    params = live.sampler.params
    server, port = build_grpc_server(parts, ServerConfig(host="127.0.0.1", grpc_port=0))
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            with pytest.raises(grpc.RpcError) as e:
                sampler_pb2_grpc.SamplerServiceStub(ch).SetTargets(targets, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    finally:
        server.stop(0)
    after = live.sampler.resolved_target_dicts()
    assert after == before and live.sampler.params == params
    assert all(math.isfinite(v) for d in after for v in d.values())


def test_a_probe_report_with_a_nan_deficit_is_dead_lettered_and_moves_nothing(tmp_path, store) -> None:  # noqa: F811
    cfg = config(tmp_path, store, probe_step=0.2)
    parts = build(cfg, InMemoryBus())
    live = parts.background[0].sampler
    live.refresh()
    before = live.sampler.resolved_target_dicts()
    report = records_pb2.ProbeReport(run_id="r", buckets=[records_pb2.ProbeBucket(discipline="history", difficulty=3,
                                                                                   n=10, accuracy=0.2, deficit=NAN)])
    [res] = parts.stage.process([Message(cfg.bus.topics.probes, 0, 0, b"r", report.SerializeToString())])
    assert res.error and res.permanent and "finite" in res.error
    assert live.sampler.resolved_target_dicts() == before
