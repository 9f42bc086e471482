"""The sampler service on the in-memory bus: path limits, lag-paced production, probes, state, gRPC servicer, CLI."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from linksyn.common.bus.base import TopicPartition
from linksyn.common.bus.memory import InMemoryBus
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.config import LinksynConfig
from linksyn.registry import build_service
from linksyn.v1 import records_pb2

from tests.sampler.sampler_graphs import build_snapshot, random_seeds


@pytest.fixture
def store(tmp_path):
    snap = build_snapshot(random_seeds(300, 60, np.random.default_rng(0)))
    s = SnapshotStore(str(tmp_path / "graph"))
    s.write(snap)
    return s


def config(tmp_path, store, **sampler) -> LinksynConfig:
    return LinksynConfig(
        bus={"topics": {"partitions": 1}},
        sampler={"snapshot_store": store.url if hasattr(store, "url") else str(tmp_path / "graph"),
                 "state_path": str(tmp_path / "state.npz"), "lag_poll_s": 0.02, **sampler}
    )


def build(cfg: LinksynConfig, bus: InMemoryBus):
    return build_service("sampler", cfg, bus)


def paths_on(bus: InMemoryBus, topic: str, group: str) -> list[records_pb2.WalkPath]:
    c = bus.consumer(group, [topic])
    out = []
    for _ in range(20):
        msgs = c.poll(10_000, timeout_s=0.05)
        out += [records_pb2.WalkPath.FromString(m.value) for m in msgs]
    c.close()
    return out


def test_a_limit_emits_exactly_that_many_then_stops(tmp_path, store):
    cfg = config(tmp_path, store, max_paths=123, lag_target=10_000)
    bus = InMemoryBus()
    parts = build(cfg, bus)
    bg = parts.background[0]
    bg.run(threading.Event())  # returns by itself
    assert bg.done.is_set() and bg.emitted == 123
    paths = paths_on(bus, cfg.bus.topics.paths, "reader")
    assert len(paths) == 123 and len({p.id for p in paths}) == 123
    assert all(p.seeds and p.seeds[0].question for p in paths)
    parts.close()
    assert (tmp_path / "state.npz").exists()
    # A restarted sampler keeps its counters: it continues numbering and coverage.
    parts2 = build(cfg, bus)
    parts2.background[0].sampler.refresh()
    assert parts2.background[0].sampler.sampler.counters.paths_emitted == 123


def test_paths_per_seed_sets_the_limit_from_the_first_snapshot(tmp_path, store):
    cfg = config(tmp_path, store, paths_per_seed=0.5, paths_per_seed_cap=10_000, lag_target=10_000)
    bg = build(cfg, InMemoryBus()).background[0]
    bg.run(threading.Event())
    n_seeds = store.latest().n_seeds
    assert bg.done.is_set() and bg.emitted == bg.limit == round(0.5 * n_seeds)
    (tmp_path / "state.npz").unlink()
    cfg.sampler.paths_per_seed_cap = 7
    capped = build(cfg, InMemoryBus()).background[0]
    capped.run(threading.Event())
    assert capped.emitted == capped.limit == 7


def test_service_max_paths_is_a_total_across_restarts(tmp_path, store):
    """`sampler.max_paths` bounds what the sampler emits in all: a restart that restores the state file continues
    up to the same total instead of starting over."""
    cfg = config(tmp_path, store, max_paths=50, lag_target=10_000)
    bus = InMemoryBus()
    parts = build(cfg, bus)
    bg = parts.background[0]
    bg.run(threading.Event())  # returns by itself once 50 are out
    assert bg.done.is_set() and bg.emitted == 50
    parts.close()
    again = build(cfg, bus).background[0]
    again.run(threading.Event())
    assert again.done.is_set() and again.emitted == 50  # nothing more: the state file says 50 were emitted
    cfg.sampler.max_paths = 80
    more = build(cfg, bus).background[0]
    more.run(threading.Event())
    assert more.emitted == 80
    paths = paths_on(bus, cfg.bus.topics.paths, "reader")
    assert len(paths) == 80 and len({p.id for p in paths}) == 80
    cfg.sampler.max_paths = 0
    unbounded = build(cfg, bus).background[0]
    assert unbounded.limit is None


def test_just_in_time_keeps_lag_at_target(tmp_path, store):
    cfg = config(tmp_path, store, lag_target=40, batch_size=16)
    bus = InMemoryBus()
    parts = build(cfg, bus)
    bg = parts.background[0]
    stop = threading.Event()
    t = threading.Thread(target=bg.run, args=(stop,))
    t.start()
    try:
        for _ in range(200):
            if bg.emitted >= 40:
                break
            stop.wait(0.02)
        stop.wait(0.3)
        assert bg.emitted == 40  # nobody consumed: it stops at the lag target
        # synth commits 30 of them: the sampler tops the lag back up to 40.
        tp = TopicPartition(cfg.bus.topics.paths, 0)
        synth = bus.consumer(cfg.sampler.lag_group, [cfg.bus.topics.paths])
        got = 0
        while got < 30:
            got += len(synth.poll(30 - got, timeout_s=0.1))
        synth.commit({tp: 30})
        for _ in range(200):
            if bg.emitted >= 70:
                break
            stop.wait(0.02)
        stop.wait(0.3)
        assert bg.emitted == 70
    finally:
        stop.set()
        t.join(5)


def test_stage_applies_probe_reports(tmp_path, store):
    from linksyn.common.bus.base import Message

    cfg = config(tmp_path, store, probe_step=0.2)
    parts = build(cfg, InMemoryBus())
    service = parts.background[0].sampler
    service.refresh()
    before, _ = service.sampler.resolved_target_dicts()
    report = records_pb2.ProbeReport(run_id="r", buckets=[records_pb2.ProbeBucket(discipline="history", difficulty=3,
                                                                                   n=10, accuracy=0.2, deficit=0.5)])
    msg = Message(cfg.bus.topics.probes, 0, 0, b"r", report.SerializeToString())
    [res] = parts.stage.process([msg])
    assert res.error is None
    after, _ = service.sampler.resolved_target_dicts()
    assert after["history"] == pytest.approx(0.8 * before["history"] + 0.2)
    [bad] = parts.stage.process([Message(cfg.bus.topics.probes, 0, 1, b"x", b"\xff\xff")])
    assert bad.error and bad.permanent


def test_servicer_preview_stats_and_targets(tmp_path, store):
    from linksyn.v1 import common_pb2, sampler_pb2

    cfg = config(tmp_path, store)
    parts = build(cfg, InMemoryBus())
    _, servicer = parts.servicers[0]
    reply = servicer.Sample(sampler_pb2.SampleRequest(n=5), None)
    assert len(reply.paths) == 5
    stats = json.loads(servicer.Stats(common_pb2.StatsRequest(), None).details_json)
    assert stats["paths_emitted"] == 0  # previews are not counted
    t = servicer.SetTargets(sampler_pb2.Targets(discipline={"math": 3, "physics": 1}, alpha=0.25), None)
    assert t.discipline["math"] == pytest.approx(0.75) and t.alpha == 0.25
    stats = json.loads(servicer.Stats(common_pb2.StatsRequest(), None).details_json)
    assert stats["discipline"]["target"]["math"] == pytest.approx(0.75)


def test_cli_prints_json_paths(tmp_path, store, capsys):
    from linksyn.sampler.cli import sample

    sample(graph=tmp_path / "graph", n=4, walker="value", seed=0, alpha=0.5, beta=1.0, gamma=1.0, eta=16.0)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4
    for line in lines:
        p = json.loads(line)
        assert len(p["kps"]) >= 2
        for s in p["seeds"]:
            assert s["id"] and s["question"] and s["answer"] and s["knowledge_points"]


def test_grpc_source_with_the_graph_service_down_has_no_newer_snapshot():
    """An unreachable graph service (not started yet, restarting) must not kill the sampler's producer."""
    from linksyn.sampler.live import grpc_source

    from tests.tooling.ports import free_loopback_port

    newer = grpc_source(f"127.0.0.1:{free_loopback_port()}")
    assert newer(0) is None and newer(7) is None


def test_producer_waits_out_an_unwalkable_first_snapshot(tmp_path):
    """The graph service may publish a snapshot before any KP has a neighbour: the producer waits for a newer one."""
    graph = SnapshotStore(str(tmp_path / "graph"))
    graph.write(build_snapshot([("lonely", ["only-kp"], "math", 2)], version=1))
    cfg = config(tmp_path, graph, max_paths=20, lag_target=10_000, refresh_s=0.05)
    cfg.bus.kind = "kafka"
    parts = build(cfg, InMemoryBus())
    bg = parts.background[0]
    stop = threading.Event()
    t = threading.Thread(target=bg.run, args=(stop,))
    t.start()
    try:
        stop.wait(0.5)
        assert t.is_alive() and bg.emitted == 0
        graph.write(build_snapshot(random_seeds(300, 60, np.random.default_rng(0)), version=2))
        t.join(10)
        assert not t.is_alive() and bg.emitted == 20
    finally:
        stop.set()
        t.join(5)


def test_producer_rides_out_a_broker_that_does_not_answer(tmp_path, store):
    """A broker outage makes the lag unreadable for a while: the producer waits and goes on, it does not die."""
    from linksyn.common.bus.errors import BrokerUnavailableError

    cfg = config(tmp_path, store, max_paths=30, lag_target=10_000, lag_poll_s=0.01)
    cfg.bus.kind = "kafka"
    bg = build(cfg, InMemoryBus()).background[0]
    failures = iter([True, True])

    def lag() -> int:
        if next(failures, False):
            raise BrokerUnavailableError("no Kafka broker answered (test)")
        return 0

    bg.lag = lag
    bg.run(threading.Event())
    assert bg.done.is_set() and bg.emitted == 30
