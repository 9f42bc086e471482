import json
import time
from pathlib import Path

import datasets
import pytest
from linksyn.common.bus.base import Message, TopicPartition
from linksyn.sink.stage import SinkStage
from linksyn.sink.store import DatasetStore

from tests.sink.sink_fixtures import TOPIC, make_qa, random_questions

TP = TopicPartition(TOPIC, 0)


def files(root: Path) -> dict[str, bytes]:
    """Every file of the dataset and its state, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def manifest(cfg) -> dict:
    return json.loads((Path(cfg.output_dir) / ".sink-state" / "manifest.json").read_text())


def test_writes_shards_card_and_loads_with_datasets(sink_cfg, messages, tmp_path):
    cfg = sink_cfg(shard_records=4)
    stage = SinkStage(cfg, TOPIC)
    qas = [make_qa(q, answer=str(i), difficulty=1 + i % 5) for i, q in enumerate(random_questions(10))]
    results = stage.process(messages(qas))
    assert all(r.error is None and r.outputs == [] for r in results)
    stage.close()
    out = Path(cfg.output_dir)
    assert sorted(p.name for p in (out / "data" / "parquet").iterdir()) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert sorted(p.name for p in (out / "data" / "jsonl").iterdir()) == ["part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]
    assert not list(out.rglob(".tmp-*"))
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(ds) == 10
    for col in ["id", "question", "answer", "knowledge_points", "discipline", "difficulty", "source_seed_ids",
                "path_id", "model"]:
        assert col in ds.column_names
    assert sorted(ds["id"]) == sorted(q.id for q in qas)
    assert ds[0]["model"] == "gen-model" and ds[0]["source_seed_ids"] == ["seed-a", "seed-b"]
    jsonl = datasets.load_dataset("json", data_files=str(out / "data/jsonl/*.jsonl"), split="train",
                                  cache_dir=str(tmp_path / "hf-cache"))
    assert sorted(jsonl["id"]) == sorted(ds["id"])
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:\n- config_name: default")
    assert "- records: 10" in card and "- prompt tokens: 1000" in card and "| link-v1 | 10 |" in card
    assert "| 1 | 2 | 20.0% |" in card  # difficulty histogram


def test_replayed_stream_leaves_dataset_unchanged(sink_cfg, messages):
    cfg = sink_cfg(shard_records=5)
    qas = [make_qa(q) for q in random_questions(12, seed=3)]
    stage = SinkStage(cfg, TOPIC)
    stage.process(messages(qas))
    stage.close()
    before = files(Path(cfg.output_dir))
    stage.process(messages(qas))  # the same records again, at later offsets
    stage.close()
    assert files(Path(cfg.output_dir)) == before
    assert stage.replays == 12
    # and after a restart, too
    again = SinkStage(cfg, TOPIC)
    again.process(messages(qas[::-1]))
    again.close()
    assert files(Path(cfg.output_dir)) == before and again.replays == 12


def test_planted_duplicates_and_near_duplicates_are_dropped_and_counted(sink_cfg, messages):
    cfg = sink_cfg()
    base = random_questions(20, seed=4, words=24)
    exact = [make_qa("  " + base[3].upper() + " ", answer="another answer"),  # same normalised question
             make_qa(base[5], answer="7")]
    near = [make_qa(base[7].rsplit(" ", 2)[0] + " case eight?"), make_qa(base[9].replace("?", " please?"))]
    stage = SinkStage(cfg, TOPIC)
    stage.process(messages([make_qa(q) for q in base]))
    stage.process(messages(exact + near))
    stage.close()
    m = manifest(cfg)
    assert m["totals"]["records"] == 20
    assert m["totals"]["dropped"] == {"duplicate": 2, "near_duplicate": 2}
    card = (Path(cfg.output_dir) / "README.md").read_text()
    assert "| duplicate | 2 |" in card and "| near_duplicate | 2 |" in card


def test_duplicates_inside_one_batch(sink_cfg, messages):
    q = random_questions(1, seed=5)[0]
    stage = SinkStage(sink_cfg(), TOPIC)
    stage.process(messages([make_qa(q, answer="1"), make_qa(q, answer="2")]))
    stage.close()
    assert manifest(stage.cfg)["totals"]["dropped"] == {"duplicate": 1}


def test_planted_benchmark_question_is_caught(sink_cfg, messages, mmlu_eval):
    cfg = sink_cfg(eval_sets=[mmlu_eval])
    leaked = make_qa("A 2 kg block sits on a frictionless horizontal table and is pushed by a constant horizontal "
                     "force of 10 N. What is the acceleration of the block?", answer="5 m/s^2")
    clean = make_qa("A 3 kg cart on a smooth track is pulled with 12 N; find its acceleration in m/s^2.", answer="4")
    stage = SinkStage(cfg, TOPIC)
    stage.process(messages([leaked, clean]))
    stage.close()
    m = manifest(cfg)
    assert m["totals"]["dropped"] == {"contaminated": 1} and m["totals"]["records"] == 1
    rows = [json.loads(x) for x in (Path(cfg.output_dir) / "data/jsonl/part-00000.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [clean.id]


def test_restart_keeps_dedup_state(sink_cfg, messages):
    cfg = sink_cfg()
    qs = random_questions(30, seed=6)
    first = SinkStage(cfg, TOPIC)
    first.process(messages([make_qa(q) for q in qs]))
    first.close()
    second = SinkStage(cfg, TOPIC)
    assert len(second.screen.dedup) == 30
    second.process(messages([make_qa(qs[0], answer="different"), make_qa(qs[1].replace("?", " now?")),
                             make_qa("a genuinely new question about bridges and towers in the old city?")]))
    second.close()
    m = manifest(cfg)
    assert m["totals"]["records"] == 31 and m["totals"]["dropped"] == {"duplicate": 1, "near_duplicate": 1}
    assert len(m["shards"]) == 2
    # The durable decisions across both runs' state chunks: 33 decided, 31 kept, each once.
    d = DatasetStore(cfg.output_dir).decisions()
    assert len(d["decided"]) == len(set(d["decided"])) == 33
    assert len(d["kept"]) == len(set(d["kept"])) == 31 and set(d["kept"]) < set(d["decided"])


def test_commits_wait_for_the_shard(sink_cfg, messages):
    clock = [0.0]
    stage = SinkStage(sink_cfg(flush_interval_s=10), TOPIC, clock=lambda: clock[0])
    assert stage.committable({TP: 0}) == {TP: 0}
    stage.process(messages([make_qa(q) for q in random_questions(5, seed=7)]))
    assert stage.committable({TP: 5}) == {TP: 0}  # nothing durable yet
    clock[0] = 5
    stage.tick()
    assert stage.committable({TP: 5}) == {TP: 0}
    clock[0] = 11
    stage.tick()  # flush interval passed: the shard is written
    assert stage.committable({TP: 5}) == {TP: 5}
    stage.process(messages([make_qa(q) for q in random_questions(2, seed=8)]))
    assert stage.committable({TP: 7}) == {TP: 5}
    assert (Path(stage.cfg.output_dir) / "data/parquet/part-00000.parquet").exists()


def test_uncommitted_files_from_a_crash_are_overwritten(sink_cfg, messages):
    cfg = sink_cfg()
    stage = SinkStage(cfg, TOPIC)
    stage.process(messages([make_qa(q) for q in random_questions(3, seed=9)]))
    stage.close()
    # A crash after writing shard 1 but before its manifest: the stray shard must not survive.
    stray = Path(cfg.output_dir) / "data/jsonl/part-00001.jsonl"
    stray.write_text('{"id": "stray"}\n')
    restarted = SinkStage(cfg, TOPIC)
    restarted.process(messages([make_qa(q) for q in random_questions(2, seed=10)]))
    restarted.close()
    assert "stray" not in stray.read_text() and len(stray.read_text().splitlines()) == 2


def test_malformed_records_fail_permanently(sink_cfg):
    stage = SinkStage(sink_cfg(), TOPIC)
    bad = [Message(TOPIC, 0, 0, None, b"\xff\xff not protobuf"),
           Message(TOPIC, 0, 1, None, make_qa("question?", answer="a", id="").SerializeToString())]
    results = stage.process(bad)
    assert all(r.permanent for r in results)
    assert "malformed SynthQA protobuf" in results[0].error and "empty id" in results[1].error


def test_fsspec_memory_url(sink_cfg, messages):
    import fsspec

    cfg = sink_cfg(output_dir="memory://linksyn-test/ds", formats=["parquet"])
    stage = SinkStage(cfg, TOPIC)
    stage.process(messages([make_qa(q) for q in random_questions(3, seed=11)]))
    stage.close()
    fs = fsspec.filesystem("memory")
    assert fs.exists("/linksyn-test/ds/data/parquet/part-00000.parquet")
    assert fs.exists("/linksyn-test/ds/.sink-state/manifest.json") and fs.exists("/linksyn-test/ds/README.md")
    restarted = SinkStage(cfg, TOPIC)
    assert len(restarted.screen.dedup) == 3
    fs.rm("/linksyn-test", recursive=True)


def test_minhash_settings_change_is_refused(sink_cfg, messages):
    cfg = sink_cfg()
    s = SinkStage(cfg, TOPIC)
    s.process(messages([make_qa(q) for q in random_questions(2)]))
    s.close()
    with pytest.raises(ValueError, match="MinHash"):
        SinkStage(sink_cfg(minhash_perm=64), TOPIC)


def test_through_the_consumer_loop_commits_after_the_shard(sink_cfg, tmp_path):
    from linksyn.common.bus import InMemoryBus
    from linksyn.common.config import RuntimeConfig, TopicsConfig
    from linksyn.common.runtime.loop import ConsumerLoop

    bus = InMemoryBus()
    topics = TopicsConfig(partitions=2)
    bus.ensure_topics(topics.all_partitions())
    qs = random_questions(40, seed=12)
    qas = [make_qa(q) for q in qs] + [make_qa(qs[0], answer="dup")]
    for qa in qas:
        bus.produce(topics.synth_qa, qa.SerializeToString(), key=qa.id.encode())
    bus.flush()
    cfg = sink_cfg(flush_interval_s=0.2, shard_records=16)
    stage = SinkStage(cfg, topics.synth_qa)
    loop = ConsumerLoop(bus, stage, RuntimeConfig(batch_size=8, batch_wait_s=0.01), topics, "sink-test").start()
    try:
        deadline = time.monotonic() + 30
        while not loop.drained(timeout=2.0):
            assert time.monotonic() < deadline, loop.stats()
    finally:
        assert loop.stop(timeout=30)
    m = manifest(cfg)
    assert m["totals"]["records"] == 40 and m["totals"]["dropped"] == {"duplicate": 1}
    before = files(Path(cfg.output_dir))
    # Replay the whole topic into a new group: nothing changes.
    stage2 = SinkStage(cfg, topics.synth_qa)
    loop2 = ConsumerLoop(bus, stage2, RuntimeConfig(batch_size=8, batch_wait_s=0.01), topics, "sink-test-replay").start()
    try:
        deadline = time.monotonic() + 30
        while not loop2.drained(timeout=2.0):
            assert time.monotonic() < deadline, loop2.stats()
    finally:
        assert loop2.stop(timeout=30)
    assert stage2.replays == 41 and files(Path(cfg.output_dir)) == before
    bus.close()
