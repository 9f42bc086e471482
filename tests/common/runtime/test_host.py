"""`run_service`: the whole process runner, in-process and as a real OS process stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from linksyn.common.bus import Bus, BusClosedError, InMemoryBus, TopicPartition, murmur2_partition
from linksyn.common.runtime.grpc_server import grpc_channel
from linksyn.common.runtime.parts import ServiceParts
from linksyn.common.runtime.host import consumer_group, run_service
from linksyn.common.runtime.stats import RuntimeStats
from linksyn.config import LinksynConfig
from linksyn.v1 import common_pb2, sink_pb2_grpc

from .conftest import EchoStage, wait_for

pytestmark = pytest.mark.timeout(120)

PROC = Path(__file__).resolve().parent / "echo_service_proc.py"
REPO = Path(__file__).resolve().parents[3]


def _config(prefix: str, **runtime: Any) -> LinksynConfig:
    topics = {name: f"{prefix}.{name}" for name in ("seeds", "seed_kps", "paths", "synth_qa", "probes", "dead_letter")}
    return LinksynConfig(
        bus={"kind": "memory", "topics": topics | {"partitions": 2}},
        runtime={"batch_wait_s": 0.01, "commit_interval_s": 0.05} | runtime,
        server={"host": "127.0.0.1", "grpc_port": 0, "metrics_port": 0},
    )


class Ticker:
    """A background loop counting its rounds until told to stop."""

    def __init__(self) -> None:
        self.rounds = 0
        self.stopped = False

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(0.01):
            self.rounds += 1
        self.stopped = True


def test_run_service_serves_health_stats_and_metrics_and_stops_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    prefix = f"svc-{uuid.uuid4().hex[:8]}"
    cfg = _config(prefix)
    bus = InMemoryBus()
    stage = EchoStage(cfg.bus.topics.seeds, cfg.bus.topics.seed_kps)

    class Servicer(RuntimeStats, sink_pb2_grpc.SinkServiceServicer):
        stats_service = stage.name

    closed: list[bool] = []
    ticker = Ticker()
    parts = ServiceParts(
        name=stage.name,
        stage=stage,
        servicers=[(sink_pb2_grpc.add_SinkServiceServicer_to_server, Servicer())],
        service_names=["linksyn.v1.SinkService"],
        background=[ticker],
        close=lambda: closed.append(True),
    )
    stop = threading.Event()
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(run_service(parts, cfg, bus, stop=stop)))
    runner.start()
    try:
        wait_for(lambda: "serving: grpc 127.0.0.1:" in caplog.text, "the start line")
        line = next(r.getMessage() for r in caplog.records if "serving: grpc" in r.getMessage())
        grpc_port = int(line.split("grpc 127.0.0.1:")[1].split(" ")[0])
        metrics_port = int(line.split("metrics http://127.0.0.1:")[1].split("/")[0])
        assert f"consuming {cfg.bus.topics.seeds} as group {consumer_group(stage.name)}" in line
        for i in range(20):
            bus.produce(cfg.bus.topics.seeds, b"%d" % i, key=b"%d" % i)
        with grpc_channel(f"127.0.0.1:{grpc_port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
            stub = sink_pb2_grpc.SinkServiceStub(ch)
            key = f"consumer_records_out_total{{topic={cfg.bus.topics.seed_kps}}}"
            wait_for(lambda: stub.Stats(common_pb2.StatsRequest(), timeout=10).counters.get(key) == 20, "20 outputs")
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert f'linksyn_consumer_records_in_total{{service="{stage.name}",topic="{cfg.bus.topics.seeds}"}} 20.0' in text
        assert ticker.rounds > 0
    finally:
        stop.set()
        runner.join(60)
    assert result == [0]
    assert ticker.stopped and closed == [True]
    with pytest.raises(BusClosedError):  # run_service closed the bus
        bus.produce(cfg.bus.topics.seeds, b"after")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2)
    with grpc_channel(f"127.0.0.1:{grpc_port}") as ch:
        with pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)


def test_run_service_exits_1_when_a_background_loop_fails() -> None:
    class Broken:
        def run(self, stop: threading.Event) -> None:
            raise RuntimeError("boom")

    cfg = _config(f"svc-{uuid.uuid4().hex[:8]}")
    rc = run_service(ServiceParts(name="broken", background=[Broken()]), cfg, InMemoryBus(), install_signal_handlers=False)
    assert rc == 1


def _start_proc(tmp_path: Path, spec: dict[str, Any]) -> tuple[subprocess.Popen[str], Path]:
    result = tmp_path / "result.json"
    spec = spec | {"result": str(result)}
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(PROC), json.dumps(spec)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return proc, result


def _wait_line(proc: subprocess.Popen[str], want: str, timeout_s: float = 60) -> None:
    got: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            got.append(line.strip())
            if line.strip() == want:
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout_s)
    if want not in got:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"the service process never printed {want!r} (stdout {got}); stderr:\n{err[-3000:]}")


def _sigterm(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the service did not exit within 30 s of SIGTERM; stderr:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    return err


def _covered(committed: dict[str, int], processed: list[list[int]], topic: str) -> None:
    """Every offset below each committed offset was processed."""
    done: dict[int, set[int]] = {}
    for p, off in processed:
        done.setdefault(p, set()).add(off)
    for key, off in committed.items():
        t, p = key.rsplit(":", 1)
        assert t == topic
        missing = set(range(off)) - done.get(int(p), set())
        assert not missing, f"partition {p} committed to {off} with {sorted(missing)[:10]} unprocessed"


def test_sigterm_after_the_work_exits_0_with_everything_committed(tmp_path: Path) -> None:
    prefix = f"proc-{uuid.uuid4().hex[:8]}"
    proc, result = _start_proc(tmp_path, {"bus": "memory", "prefix": prefix, "records": 300, "batch_sleep_s": 0})
    _wait_line(proc, "ALL-OUT")
    time.sleep(0.5)  # a periodic commit or two; the final commit covers the rest anyway
    err = _sigterm(proc)
    out = json.loads(result.read_text())
    assert out["rc"] == 0
    assert sum(out["committed"].values()) == 300
    _covered(out["committed"], out["processed"], f"{prefix}.seeds")
    assert "received SIGTERM: shutting down" in err and "stopped (exit code 0)" in err


def test_sigterm_in_the_middle_commits_only_processed_records(tmp_path: Path) -> None:
    prefix = f"proc-{uuid.uuid4().hex[:8]}"
    proc, result = _start_proc(tmp_path, {"bus": "memory", "prefix": prefix, "records": 20000, "batch_sleep_s": 0.02})
    _wait_line(proc, "STARTED")
    _sigterm(proc)
    out = json.loads(result.read_text())
    assert out["rc"] == 0
    committed = sum(out["committed"].values())
    assert 0 < committed < 20000  # it stopped mid-stream
    _covered(out["committed"], out["processed"], f"{prefix}.seeds")


@pytest.mark.kafka
def test_sigterm_on_kafka_exits_0_and_the_group_committed_every_record(
    tmp_path: Path, make_bus: Callable[..., Bus], kafka_bootstrap: str
) -> None:
    prefix = f"kproc-{uuid.uuid4().hex[:8]}"
    bus = make_bus("kafka")
    src, dst = f"{prefix}.seeds", f"{prefix}.seed-kps"
    bus.ensure_topics({src: 2, dst: 2})
    for i in range(200):
        bus.produce(src, b"%d" % i, key=b"%d" % i)
    bus.flush()
    proc, result = _start_proc(
        tmp_path,
        {"bus": "kafka", "bootstrap": kafka_bootstrap, "prefix": prefix, "records": 200, "batch_sleep_s": 0},
    )
    _wait_line(proc, "ALL-OUT", timeout_s=90)
    _sigterm(proc)
    out = json.loads(result.read_text())
    assert out["rc"] == 0
    _covered(out["committed"], out["processed"], src)
    # What the broker holds for the group: every record committed.
    c = bus.consumer(consumer_group("echo-proc"), [src])
    try:
        extra: list[Any] = []
        wait_for(lambda: extra.extend(c.poll(timeout_s=0.2)) or len(c.assignment()) == 2, "the partitions")
        assert extra == []  # nothing left uncommitted
        committed = {p: c.committed(TopicPartition(src, p)) for p in range(2)}
    finally:
        c.close()
    # The log end of each partition, from the keys (Tansu's ListOffsets answer is not reliable before a fetch).
    ends = Counter(murmur2_partition(b"%d" % i, 2) for i in range(200))
    assert committed == dict(ends)
