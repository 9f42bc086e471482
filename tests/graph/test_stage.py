"""The graph stage: malformed records are permanent failures with reasons; on the real consumer loop (in-memory
bus) they are dead-lettered while the stream goes on, snapshots gate commits, and a restart resumes exactly."""

from __future__ import annotations

import time
import uuid

import pytest
from linksyn.common.bus import InMemoryBus
from linksyn.common.bus.base import Message, TopicPartition
from linksyn.common.config import RetryConfig, RuntimeConfig, TopicsConfig
from linksyn.common.runtime.loop import ConsumerLoop
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.graph.build import KPGraph
from linksyn.graph.config import GraphConfig
from linksyn.graph.stage import GraphStage
from linksyn.v1 import records_pb2

from tests.graph.graph_fixtures import HAND_SEEDS, annotated


def msg(value: bytes, offset: int = 0, topic: str = "linksyn.seed-kps", partition: int = 0) -> Message:
    return Message(topic=topic, partition=partition, offset=offset, key=None, value=value)


def make_stage(tmp_path, **overrides) -> GraphStage:
    cfg = GraphConfig(snapshot_url=str(tmp_path / "graph"), **overrides)
    return GraphStage(cfg, TopicsConfig())


def with_unknown_field(seed: records_pb2.AnnotatedSeed) -> bytes:
    return seed.SerializeToString() + b"\xf8\x07\x01"  # field 127, varint 1: not in the schema


def nested_unknown_field(seed: records_pb2.AnnotatedSeed) -> bytes:
    inner = seed.seed.SerializeToString() + b"\xf8\x07\x01"
    rest = records_pb2.AnnotatedSeed()
    rest.CopyFrom(seed)
    rest.ClearField("seed")
    return b"\x0a" + bytes([len(inner)]) + inner + rest.SerializeToString()


MALFORMED = [
    ("undecodable", lambda: b"\xff\xff\xff\xff", "undecodable: malformed AnnotatedSeed protobuf"),
    ("no_kps", lambda: annotated("n1", []).SerializeToString(), "no_kps: AnnotatedSeed 'n1' has no KPs"),
    ("too_many", lambda: annotated("n2", [f"k{i}" for i in range(9)]).SerializeToString(), "too_many_kps: AnnotatedSeed 'n2' has 9 KPs, more than graph.max_kps_per_seed=8"),
    ("unknown", lambda: with_unknown_field(annotated("n3", ["a"])), "unknown_fields: AnnotatedSeed 'n3' carries 3 bytes"),
    ("unknown_nested", lambda: nested_unknown_field(annotated("n4", ["a"])), "unknown_fields: AnnotatedSeed 'n4'"),
    ("oversized", lambda: records_pb2.AnnotatedSeed(seed=records_pb2.Seed(id="n5", question="x" * 100_001), kps=["a"]).SerializeToString(), "oversized: AnnotatedSeed 'n5' has 100001 characters"),
    ("kp_too_long", lambda: annotated("n6", ["y" * 201]).SerializeToString(), "kp_too_long: AnnotatedSeed 'n6' has a KP of 201 characters"),
    ("empty_kp", lambda: annotated("n7", ["a", "  "]).SerializeToString(), "empty_kp: AnnotatedSeed 'n7' has an empty KP"),
    ("no_id", lambda: annotated("", ["a"]).SerializeToString(), "no_seed_id: AnnotatedSeed has an empty seed.id"),
    ("difficulty", lambda: annotated("n8", ["a"], "math", 9).SerializeToString(), "bad_difficulty: AnnotatedSeed 'n8' has difficulty 9"),
]


@pytest.mark.parametrize("case,value,reason", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_seed_is_a_permanent_failure_with_its_reason(tmp_path, case, value, reason):
    stage = make_stage(tmp_path)
    good = annotated("ok", ["a", "b"]).SerializeToString()
    results = stage.process([msg(good, 0), msg(value(), 1), msg(good, 2)])
    assert [r.error is None for r in results] == [True, False, True]
    assert results[1].permanent and results[1].error.startswith(reason), results[1].error
    assert stage.graph.n_seeds == 1 and stage.graph.kp_texts() == ["a", "b"]


def test_unknown_fields_can_be_allowed(tmp_path):
    stage = make_stage(tmp_path, reject_unknown_fields=False)
    (r,) = stage.process([msg(with_unknown_field(annotated("u", ["a"])))])
    assert r.error is None and stage.graph.n_seeds == 1


def test_commits_wait_for_a_durable_snapshot(tmp_path):
    stage = make_stage(tmp_path, snapshot_every_seeds=3, snapshot_every_s=3600)
    tp = TopicPartition("linksyn.seed-kps", 0)
    stage.process([msg(annotated(f"s{i}", ["a"]).SerializeToString(), i) for i in range(2)])
    assert stage.committable({tp: 2}) == {}  # ingested, but in no snapshot yet
    stage.tick()
    assert stage.published is None  # 2 seeds < snapshot_every_seeds, and the time has not come
    stage.process([msg(annotated("s2", ["b"]).SerializeToString(), 2)])
    assert stage.committable({tp: 3}) == {}
    stage.tick()
    assert stage.published.version == 1 and stage.published.offsets == {"linksyn.seed-kps": {0: 3}}
    assert stage.committable({tp: 5}) == {tp: 3}  # never past the snapshot
    assert stage.committable({tp: 2}) == {tp: 2}  # never past what the loop says is done
    assert SnapshotStore(tmp_path / "graph").latest().n_seeds == 3


def test_close_writes_a_final_snapshot_and_a_new_stage_resumes_from_it(tmp_path):
    stage = make_stage(tmp_path)
    stage.process([msg(a.SerializeToString(), i) for i, a in enumerate(annotated(*s) for s in HAND_SEEDS[:4])])
    stage.committable({TopicPartition("linksyn.seed-kps", 0): 4})
    stage.close()
    again = make_stage(tmp_path)
    assert again.published.version == 1 and again.graph.n_seeds == 4
    assert again.committable({TopicPartition("linksyn.seed-kps", 0): 9}) == {TopicPartition("linksyn.seed-kps", 0): 4}
    again.process([msg(annotated(*s).SerializeToString(), i) for i, s in enumerate(HAND_SEEDS)])  # replay + rest
    straight = KPGraph()
    straight.ingest_annotated([annotated(*s) for s in HAND_SEEDS])
    assert again.graph.to_snapshot(1).differences(straight.to_snapshot(1)) == []
    again.close()
    assert make_stage(tmp_path).published.version == 2


def fast_runtime() -> RuntimeConfig:
    return RuntimeConfig(batch_size=4, batch_wait_s=0.01, commit_interval_s=0.1,
                         retry=RetryConfig(backoff_initial_s=0.01, max_attempts=2))


def wait_until(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_on_the_consumer_loop_malformed_records_are_dead_lettered_and_the_stream_goes_on(tmp_path):
    bus = InMemoryBus()
    topics = TopicsConfig(seed_kps=f"kps-{uuid.uuid4().hex[:6]}", dead_letter=f"dl-{uuid.uuid4().hex[:6]}", partitions=2)
    bus.ensure_topics({topics.seed_kps: 2, topics.dead_letter: 1})
    values = [annotated(*s).SerializeToString() for s in HAND_SEEDS]
    values.insert(2, annotated("bad", []).SerializeToString())
    values.insert(5, b"\x07garbage")
    for v in values:
        bus.produce(topics.seed_kps, v, key=v[:8])
    cfg = GraphConfig(snapshot_url=str(tmp_path / "graph"), snapshot_every_seeds=1, snapshot_every_s=0.1)
    stage = GraphStage(cfg, topics)
    loop = ConsumerLoop(bus, stage, fast_runtime(), topics, "graph-test").start()
    try:
        wait_until(lambda: loop.drained(timeout=2))
    finally:
        assert loop.stop(timeout=30)
    dl_consumer = bus.consumer("dl-reader", [topics.dead_letter])
    dead = [records_pb2.DeadLetter.FromString(m.value) for m in dl_consumer.poll(timeout_s=1)]
    assert sorted(d.error.split(":")[0] for d in dead) == ["no_kps", "undecodable"]
    assert all(d.service == "graph" and d.attempts == 1 for d in dead)
    final = SnapshotStore(tmp_path / "graph").latest()
    assert final.n_seeds == len(HAND_SEEDS) and final.n_edges == 5
    assert sum(final.offsets[topics.seed_kps].values()) == len(values)  # every record, dead letters included
