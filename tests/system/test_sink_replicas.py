"""The sink scaled out: `linksyn serve sink` replicas as real processes on a real Kafka-protocol broker (Tansu),
sharing one dataset and state folder, each with its own on-disk index folder (as each pod has its own volume).

- Two replicas, a rebalance in the middle (the second joins while the first is working), planted duplicates: exact
  duplicates keyed by the QA id as an older producer would key them (so they land in other partitions than their
  originals, and the sink must publish them again under their question's key), exact duplicates keyed by the
  contract, near duplicates and replays. No question is kept twice, and every record is decided exactly once.
- kill -9 of a replica mid-stream, with its state on disk; restarted, it ends with the same dataset as a run
  without the kill (the decisions of a partition depend only on its records, in offset order).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from linksyn.common.bus.kafka import KafkaBus
from linksyn.common.config import KafkaConfig
from linksyn.common.ids import id64, question_hash, question_key

from tests.system.cluster import GROUP_SETTINGS, LINKSYN, sink_dataset
from tests.tooling.ports import free_loopback_port
from tests.tooling.synthetic_qa import EXACT, NEAR, REPLAY, SyntheticQA
from tests.tooling.tansu import TansuBroker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

PARTITIONS = 4
TOPIC = "linksyn.synth-qa"


class SinkReplica:
    """One `linksyn serve sink` process with its own ports and index folder."""

    def __init__(self, root: Path, config: Path, name: str) -> None:
        self.name = name
        self.config = config
        self.index_dir = root / f"index-{name}"
        self.log = root / f"{name}.log"
        self.grpc_port = free_loopback_port()
        self.metrics_port = free_loopback_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "SinkReplica":
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINKSYN_")} | {
            "LINKSYN_SERVER__GRPC_PORT": str(self.grpc_port),
            "LINKSYN_SERVER__METRICS_PORT": str(self.metrics_port),
            "LINKSYN_SINK__INDEX_DIR": str(self.index_dir),
        }
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([LINKSYN, "serve", "sink", "--config", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        return self

    def details(self) -> dict[str, Any]:
        from linksyn.cli import target_status

        return target_status(f"127.0.0.1:{self.grpc_port}", None, None, timeout=3.0).get("details") or {}

    def serving(self) -> bool:
        from linksyn.cli import target_status

        return target_status(f"127.0.0.1:{self.grpc_port}", None, None, timeout=3.0)["health"] == "SERVING"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no log)"


def wait(cond: Callable[[], bool], what: str, replicas: list[SinkReplica], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        for r in replicas:
            if r.proc is not None and r.proc.poll() is not None and r.proc.returncode != -9:
                raise AssertionError(f"{r.name} exited with {r.proc.returncode}:\n{r.tail()}")
        try:
            if cond():
                return
            last = None
        except Exception as e:  # noqa: BLE001 - a replica starting up: ask again
            last = e
        time.sleep(0.3)
    logs = "\n".join(f"---- {r.name} ----\n{r.tail()}" for r in replicas)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last!r})\n{logs}")


@pytest.fixture
def setup(tmp_path: Path):
    with TansuBroker() as broker:
        kafka = {"bootstrap": broker.bootstrap, **GROUP_SETTINGS}
        config = {
            "bus": {"kind": "kafka", "kafka": kafka, "topics": {"partitions": PARTITIONS}},
            "runtime": {"batch_size": 64, "batch_wait_s": 0.05, "commit_interval_s": 0.3, "shutdown_timeout_s": 20},
            "server": {"host": "127.0.0.1"},
            "sink": {"output_dir": str(tmp_path / "dataset"), "flush_interval_s": 0.5, "shard_records": 200,
                     "formats": ["jsonl"]},
        }
        path = tmp_path / "linksyn.yaml"
        path.write_text(yaml.safe_dump(config))
        bus = KafkaBus(KafkaConfig(**kafka), client_id="sink-replicas-test")
        from linksyn.config import load_config

        bus.ensure_topics(load_config(path).bus.topics.all_partitions())
        replicas: list[SinkReplica] = []
        try:
            yield tmp_path, path, bus, replicas
        finally:
            for r in replicas:
                if r.alive():
                    r.proc.kill()
                    r.proc.wait(10)
            bus.close()


def produce(bus: KafkaBus, stream: list, keyed_by_id: Callable[[int], bool] = lambda i: False) -> None:
    for qa, planted in stream:
        key = qa.id.encode() if keyed_by_id(planted.index) else question_key(qa.question)
        bus.produce(TOPIC, qa.SerializeToString(), key=key)
    bus.flush()


def produce_slowly(bus: KafkaBus, stream: list, by_id: set[int], per_batch: int = 20, pause_s: float = 0.2) -> None:
    for start in range(0, len(stream), per_batch):
        produce(bus, stream[start : start + per_batch], keyed_by_id=lambda i: i in by_id)
        time.sleep(pause_s)


def sink_lag(bus: KafkaBus) -> int:
    return sum(bus.group_lag("linksyn.sink", TOPIC).values())


def check_no_duplicate_kept_nothing_lost(root: Path, stream: list) -> list[dict[str, Any]]:
    """Every distinct record decided once; kept = the dataset's rows; no normalised question kept twice; every
    question that is not a near duplicate kept once."""
    rows = sink_dataset(str(root / "dataset"))
    from linksyn.sink.store import DatasetStore

    decisions = DatasetStore(str(root / "dataset")).decisions()
    ids = {qa.id for qa, _ in stream}
    assert len(decisions["decided"]) == len(set(decisions["decided"])), "a record was decided twice"
    assert set(decisions["decided"]) == {id64(i) for i in ids}, "a record was never decided"
    assert sorted(decisions["kept"]) == sorted(id64(r["id"]) for r in rows)
    kept_questions = Counter(question_hash(r["question"]) for r in rows)
    assert max(kept_questions.values()) == 1, "an exact duplicate was kept"
    near_dropped = sum(m["totals"]["dropped"].get("near_duplicate", 0) for m in manifests(root).values())
    assert len(kept_questions) + near_dropped == len({question_hash(qa.question) for qa, _ in stream})
    return rows


def manifests(root: Path) -> dict[int, dict[str, Any]]:
    from linksyn.sink.store import DatasetStore

    return DatasetStore(str(root / "dataset")).manifests()


def test_two_replicas_and_a_rebalance_keep_no_exact_duplicate_and_lose_nothing(setup):
    root, config, bus, replicas = setup
    stream = list(SyntheticQA(4000, seed=7, exact_share=0.08, near_share=0.05, replay_share=0.02,
                              recent=400).records())
    kinds = Counter(p.kind for _, p in stream)
    assert kinds[EXACT] > 100 and kinds[NEAR] > 100 and kinds[REPLAY] > 30
    # Half the exact duplicates keyed as an older producer keyed them (by QA id): they land in other partitions than
    # their originals, unless the sink publishes them again under the question's key.
    by_id = {p.index for _, p in stream if p.kind == EXACT and p.index % 2 == 0}
    from linksyn.common.bus.base import murmur2_partition

    moved = sum(murmur2_partition(qa.id.encode(), PARTITIONS) != murmur2_partition(question_key(qa.question),
                                                                                  PARTITIONS)
                for qa, p in stream if p.index in by_id)
    assert moved > len(by_id) / 2  # most really are elsewhere
    produce(bus, stream[:1500], keyed_by_id=lambda i: i in by_id)

    first = SinkReplica(root, config, "sink-a").start()
    replicas.append(first)
    wait(first.serving, "the first replica to serve", replicas)
    wait(lambda: sum(m["totals"]["records"] for m in manifests(root).values()) >= 500,
         "the first replica to make records durable", replicas)
    # The middle of the stream arrives slowly (about 100 records a second) while the second replica starts and joins:
    # the rebalance lands while the first has records in flight and windows pending.
    trickle = threading.Thread(target=produce_slowly, args=(bus, stream[1500:3500], by_id), daemon=True)
    trickle.start()
    second = SinkReplica(root, config, "sink-b").start()
    replicas.append(second)
    wait(second.serving, "the second replica to serve", replicas)
    trickle.join(120)
    produce(bus, stream[3500:], keyed_by_id=lambda i: i in by_id)
    wait(lambda: bool(second.details().get("partitions")) and bool(first.details().get("partitions")),
         "both replicas to decide records of their partitions", replicas)
    wait(lambda: sink_lag(bus) == 0 and all(r.details().get("pending_records") == 0 for r in replicas),
         "both replicas to finish", replicas)
    # State moved with its partitions: the second replica (an empty index folder) loaded the first one's chunks.
    moved_state = second.details()["partitions"]
    assert any(p["chunks_applied_at_restore"] > 0 for p in moved_state.values()), moved_state
    rekeyed = first.details()["rekeyed"] + second.details()["rekeyed"]
    assert first.terminate() == 0 and second.terminate() == 0
    assert rekeyed >= len(by_id)  # some twice: records handed over at the rebalance are redone by their new owner
    rows = check_no_duplicate_kept_nothing_lost(root, stream)
    assert len(rows) > 3000
    # A sample of what was planted: every exact duplicate's question is in the dataset exactly once.
    questions = {question_hash(r["question"]) for r in rows}
    assert all(question_hash(qa.question) in questions for qa, p in stream if p.kind == EXACT)


def reference_dataset(root: Path, stream: list) -> list[dict[str, Any]]:
    """The dataset one in-process sink makes of the same records, each partition in offset order, without a kill."""
    from linksyn.common.bus.base import Message, murmur2_partition
    from linksyn.sink.config import SinkConfig
    from linksyn.sink.stage import SinkStage

    cfg = SinkConfig(output_dir=str(root / "reference"), flush_interval_s=3600, shard_records=200, formats=["jsonl"])
    stage = SinkStage(cfg, TOPIC)
    offsets: Counter = Counter()
    msgs = []
    for qa, _ in stream:
        key = question_key(qa.question)
        p = murmur2_partition(key, PARTITIONS)
        msgs.append(Message(TOPIC, p, offsets[p], key, qa.SerializeToString()))
        offsets[p] += 1
    for start in range(0, len(msgs), 64):
        stage.process(msgs[start : start + 64])
    stage.close()
    return sink_dataset(str(root / "reference"))


def test_kill9_of_a_replica_with_state_on_disk_then_restart_gives_the_same_dataset(setup):
    root, config, bus, replicas = setup
    stream = list(SyntheticQA(4000, seed=8, recent=400).records())
    produce(bus, stream[:2500])
    replica = SinkReplica(root, config, "sink-a").start()
    replicas.append(replica)
    wait(replica.serving, "the replica to serve", replicas)
    wait(lambda: sum(m["totals"]["records"] for m in manifests(root).values()) >= 800,
         "some records durable", replicas)
    replica.kill9()  # mid-stream: a window pending, the index's memtables unwritten
    durable_at_kill = sum(m["totals"]["records"] for m in manifests(root).values())
    produce(bus, stream[2500:])
    replica.start()
    wait(lambda: sink_lag(bus) == 0 and replica.details().get("pending_records") == 0, "the restart to finish",
         replicas)
    restored = replica.details()["partitions"]
    assert replica.terminate() == 0
    rows = check_no_duplicate_kept_nothing_lost(root, stream)
    assert durable_at_kill < len(rows)
    # State on disk was used: each partition was loaded from its manifest and chunks.
    assert all(p["records"] > 0 for p in restored.values()), restored
    assert sorted(json.dumps(r, sort_keys=True) for r in rows) == sorted(
        json.dumps(r, sort_keys=True) for r in reference_dataset(root, stream))
