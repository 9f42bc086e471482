"""The kept-QA topic (sink.kept_topic, off by default): each kept row, as the JSON line the dataset's JSONL shards
hold, published when its shard is written; never a dropped record; again (same key) after a crash before the
manifest; wired by the sink's app on a real in-memory bus."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
from linksyn.common.bus.memory import InMemoryBus
from linksyn.common.runtime.publish import Publisher
from linksyn.sink.stage import SinkStage

from tests.sink.sink_fixtures import TOPIC, make_qa, random_questions

KEPT = "linksyn.kept-qa"


def read_topic(bus: InMemoryBus, topic: str) -> list:
    consumer = bus.consumer(f"reader-{topic}-{id(bus)}", [topic])
    got: list = []
    while batch := consumer.poll(timeout_s=0.05):
        got += batch
    consumer.close()
    return got


def shard_lines(output_dir: str) -> list[bytes]:
    return [line for p in sorted((Path(output_dir) / "data" / "jsonl").glob("*.jsonl"))
            for line in p.read_bytes().splitlines()]


def test_kept_rows_are_published_as_their_jsonl_lines_when_their_shard_is_written(sink_cfg, messages):
    bus = InMemoryBus()
    cfg = sink_cfg(shard_records=4, kept_topic=KEPT)
    stage = SinkStage(cfg, TOPIC, publish=Publisher(bus, "sink").publish)
    questions = random_questions(6, seed=11)
    qas = [make_qa(q, answer=str(i)) for i, q in enumerate(questions)]
    duplicate = make_qa(questions[0].upper(), answer="another answer")  # same normalised question: dropped
    stage.process(messages(qas[:3] + [duplicate]))
    assert read_topic(bus, KEPT) == []  # nothing before its shard is written
    stage.process(messages(qas[3:]))  # the 4th kept row fills shard 0
    assert len(read_topic(bus, KEPT)) == 4
    stage.close()  # writes the last, partial shard

    records = read_topic(bus, KEPT)
    assert [m.value for m in records] == shard_lines(cfg.output_dir)  # the dataset's own lines, in order
    assert [m.key for m in records] == [qa.id.encode() for qa in qas]
    assert all(m.header("content-type") == b"application/json" for m in records)
    assert duplicate.id not in {json.loads(m.value)["id"] for m in records}


def test_a_flush_that_crashes_before_the_manifest_publishes_again_on_replay(sink_cfg, messages):
    bus = InMemoryBus()
    cfg = sink_cfg(kept_topic=KEPT)
    qas = [make_qa(q) for q in random_questions(3, seed=12)]
    stage = SinkStage(cfg, TOPIC, publish=Publisher(bus, "sink").publish)
    stage.store.write_manifest = lambda *args: (_ for _ in ()).throw(OSError("disk gone"))  # the crash point
    stage.process(messages(qas))
    with pytest.raises(OSError):
        stage.flush()
    del stage  # the crashed process is gone, and so are its open files (the partition's on-disk index)
    gc.collect()
    restarted = SinkStage(cfg, TOPIC, publish=Publisher(bus, "sink").publish)  # nothing durable: all replayed
    restarted.process(messages(qas))
    restarted.close()
    keys = [m.key for m in read_topic(bus, KEPT)]
    assert keys == [qa.id.encode() for qa in qas] * 2  # at least once: the repeat carries the same keys
    assert shard_lines(cfg.output_dir) == [m.value for m in read_topic(bus, KEPT)][3:]


def test_off_by_default_and_refused_without_a_publisher(sink_cfg, messages):
    stage = SinkStage(sink_cfg(), TOPIC)
    stage.process(messages([make_qa(q) for q in random_questions(2, seed=13)]))
    stage.close()
    assert stage.cfg.kept_topic is None
    with pytest.raises(ValueError, match="sink.kept_topic is 'linksyn.kept-qa' but the stage was given nothing"):
        SinkStage(sink_cfg(kept_topic=KEPT), TOPIC)


def test_the_sink_app_creates_the_topic_and_publishes_there(sink_cfg, messages):
    from linksyn.config import LinksynConfig
    from linksyn.sink.app import build

    bus = InMemoryBus()
    shared = LinksynConfig()
    parts = build(sink_cfg(kept_topic=KEPT), shared, bus)
    assert bus.partitions_for(KEPT) == shared.bus.topics.partitions
    parts.stage.process(messages([make_qa(q) for q in random_questions(2, seed=14)]))
    parts.close()
    assert len(read_topic(bus, KEPT)) == 2
