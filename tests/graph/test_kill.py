"""kill -9 of a real graph-service process (`linksyn serve graph`) in the middle of a stream on the Kafka bus
(Tansu): after a restart the service ends with exactly the graph it would have had without the kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
import yaml
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.graph.analysis import canonical_form
from linksyn.graph.build import KPGraph
from linksyn.v1 import common_pb2, graph_pb2_grpc, records_pb2

from tests.graph.graph_fixtures import annotated
from tests.tooling.ports import free_loopback_port

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

PARTITIONS = 3


def seeds(start: int, n: int) -> list[records_pb2.AnnotatedSeed]:
    """Deterministic annotated seeds over a small KP vocabulary (so edges accumulate weight)."""
    out = []
    for i in range(start, start + n):
        kps = sorted({f"kp{(i * 7 + j * 13) % 97}" for j in range(1 + i % 5)})
        out.append(annotated(f"seed-{i}", kps, ["math", "physics", "law"][i % 3], i % 6))
    return out


def stream(start: int, n: int) -> list[tuple[bytes, bytes]]:
    """(key, value) records: seeds with a malformed record every 97 and a re-sent seed every 50."""
    recs = []
    for s in seeds(start, n):
        recs.append((s.seed.id.encode(), s.SerializeToString()))
        i = int(s.seed.id.split("-")[1])
        if i % 97 == 0:
            recs.append((b"bad-%d" % i, annotated(f"bad-{i}", []).SerializeToString()))
        if i % 50 == 0:
            recs.append((s.seed.id.encode(), s.SerializeToString()))  # a duplicate: must change nothing
    return recs


class GraphProcess:
    started: list["GraphProcess"] = []

    def __init__(self, config: Path, log: Path, grpc_port: int) -> None:
        GraphProcess.started.append(self)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "linksyn.cli", "serve", "graph", "--config", str(config)],
            stdout=open(log, "ab"), stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("LINKSYN_")},
        )
        self.log = log
        self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        self.stub = graph_pb2_grpc.GraphServiceStub(self.channel)

    def details(self) -> dict | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"graph service exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
        try:
            return json.loads(self.stub.Stats(common_pb2.StatsRequest(), timeout=2).details_json)
        except grpc.RpcError:
            return None

    def wait_for(self, cond, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self.details()
            if d is not None and cond(d):
                return d
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last details {self.details()}\n{self.log.read_text()[-4000:]}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.channel.close()

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        self.channel.close()
        return rc


@pytest.fixture
def no_leftover_processes():
    yield
    for p in GraphProcess.started:  # a failed test must not leave a service running
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(10)
    GraphProcess.started.clear()


def test_kill_9_mid_stream_then_restart_gives_the_same_graph(
    tmp_path, kafka_bootstrap, make_bus, unique_topic, no_leftover_processes
):
    topic, dead_letter = unique_topic("seed-kps"), unique_topic("dead-letter")
    grpc_port = free_loopback_port()
    snapshot_dir = tmp_path / "graph"
    config = tmp_path / "linksyn.yaml"
    config.write_text(yaml.safe_dump({
        "bus": {
            "kind": "kafka",
            "kafka": {"bootstrap": kafka_bootstrap, "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000,
                      "max_poll_interval_ms": 10000},
            "topics": {"seed_kps": topic, "dead_letter": dead_letter, "seeds": unique_topic("s"),
                       "paths": unique_topic("p"), "synth_qa": unique_topic("q"), "probes": unique_topic("pr"),
                       "partitions": PARTITIONS},
        },
        "runtime": {"batch_size": 8, "batch_wait_s": 0.01, "commit_interval_s": 0.2},
        "server": {"host": "127.0.0.1", "grpc_port": grpc_port, "metrics_port": 0},
        "graph": {"snapshot_url": str(snapshot_dir), "snapshot_every_seeds": 300, "snapshot_every_s": 1.5},
    }))
    bus = make_bus("kafka")
    bus.ensure_topics({topic: PARTITIONS, dead_letter: 1})
    records = stream(0, 8000)

    def produce_steadily() -> None:  # ~600 records/s: the stream is still flowing when the kill comes
        for i, (key, value) in enumerate(records):
            bus.produce(topic, value, key=key)
            if i % 50 == 49:
                bus.flush()
                time.sleep(0.08)
        bus.flush()

    log = tmp_path / "graph.log"
    svc = GraphProcess(config, log, grpc_port)
    svc.wait_for(lambda d: True, 60, "the gRPC server")
    producer = threading.Thread(target=produce_steadily, daemon=True)
    producer.start()
    # Kill while the live graph is ahead of the last durable snapshot (ingested work that only replay can restore).
    d = svc.wait_for(lambda d: d["snapshot_version"] >= 2 and d["live_seeds"] > d["seeds"], 90, "a snapshot + more")
    svc.kill9()
    at_kill = SnapshotStore(snapshot_dir).latest()
    assert producer.is_alive(), "the stream ended before the kill: nothing tested"
    assert at_kill is not None and at_kill.n_seeds < d["live_seeds"]
    time.sleep(1.0)  # the stream goes on while the service is down

    svc = GraphProcess(config, log, grpc_port)
    producer.join(120)
    assert not producer.is_alive()
    svc.wait_for(
        lambda d: d.get("snapshot_offsets") and sum(d["snapshot_offsets"].get(topic, {}).values()) == len(records),
        120, "every record in a snapshot",
    )
    counters = svc.stub.Stats(common_pb2.StatsRequest(), timeout=5).counters
    read_after_restart = counters[f"consumer_records_in_total{{topic={topic}}}"]
    # resumed from the committed offsets (at or before the snapshot's), not from the start of the topic
    assert len(records) - sum(at_kill.offsets[topic].values()) <= read_after_restart < len(records)
    assert svc.terminate() == 0, log.read_text()[-4000:]

    final = SnapshotStore(snapshot_dir).latest()
    expected = KPGraph()
    expected.ingest_annotated(seeds(0, 8000))
    assert final.n_seeds == 8000 and final.n_kps == 97
    assert canonical_form(final).differences(canonical_form(expected.to_snapshot(1))) == []
    assert final.version > at_kill.version

    # every malformed record was dead-lettered (at least once: the kill may repeat one), with its reason
    reader = bus.consumer(unique_topic("dl-reader"), [dead_letter])
    dead, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline and {d.key for d in dead} != {b"bad-%d" % i for i in range(0, 8000, 97)}:
        dead += [records_pb2.DeadLetter.FromString(m.value) for m in reader.poll(timeout_s=1)]
    assert {d.key for d in dead} == {b"bad-%d" % i for i in range(0, 8000, 97)}
    assert all(d.error.startswith("no_kps:") and d.service == "graph" for d in dead)
    reader.close()
