import json
import time
from pathlib import Path

import datasets
import pytest
from linksyn.common.bus.base import Message, TopicPartition
from linksyn.common.ids import question_key
from linksyn.sink.partition import SinkStateError
from linksyn.sink.stage import SinkStage
from linksyn.sink.store import DatasetStore

from tests.sink.sink_fixtures import TOPIC, MessageFactory, make_qa, random_questions

TP = TopicPartition(TOPIC, 0)


def files(root: Path) -> dict[str, bytes]:
    """Every file of the dataset and its durable state, by relative path (not the on-disk index: a cache of it)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".sink-state/index" not in str(p)}


def manifest(cfg, partition: int = 0) -> dict:
    return json.loads((Path(cfg.output_dir) / ".sink-state" / "partitions" / f"{partition:05d}" / "manifest.json")
                      .read_text())


def test_writes_shards_card_and_loads_with_datasets(sink_cfg, messages, tmp_path):
    cfg = sink_cfg(shard_records=4)
    stage = SinkStage(cfg, TOPIC)
    qas = [make_qa(q, answer=str(i), difficulty=1 + i % 5) for i, q in enumerate(random_questions(10))]
    results = stage.process(messages(qas))
    assert all(r.error is None and r.outputs == [] for r in results)
    stage.close()
    out = Path(cfg.output_dir)
    assert sorted(p.name for p in (out / "data" / "parquet").iterdir()) == [
        "part-p00000-00000.parquet", "part-p00000-00001.parquet", "part-p00000-00002.parquet"]
    assert sorted(p.name for p in (out / "data" / "jsonl").iterdir()) == [
        "part-p00000-00000.jsonl", "part-p00000-00001.jsonl", "part-p00000-00002.jsonl"]
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


def test_a_sink_that_kept_nothing_still_writes_its_card_at_close(sink_cfg):
    """A run whose QA were all dropped upstream (or that the budget stopped early) still has a card saying so."""
    cfg = sink_cfg()
    stage = SinkStage(cfg, TOPIC)
    stage.tick()
    stage.flush()
    assert not (Path(cfg.output_dir) / "README.md").exists()  # nothing to say while running
    stage.close()
    card = (Path(cfg.output_dir) / "README.md").read_text()
    assert "- records: 0" in card and "## LLM spend" not in card  # no usage follower here: no spend section


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
    rows = [json.loads(x) for x in (Path(cfg.output_dir) / "data/jsonl/part-p00000-00000.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [clean.id]


def test_counts_in_its_own_terms_and_the_card_shows_its_plots(sink_cfg, messages, mmlu_eval):
    """The stage's totals say rows kept, duplicates and leaks; the card embeds SVG plots written beside it whose
    numbers are the manifest's."""
    import xml.etree.ElementTree as ET

    cfg = sink_cfg(eval_sets=[mmlu_eval])
    base = random_questions(9, seed=11, words=24)
    qas = [make_qa(q, answer=str(i), discipline=("physics", "mathematics", "history")[i % 3], difficulty=1 + i % 2,
                   path_kps=["force", "mass"]) for i, q in enumerate(base)]
    leaked = make_qa("A 2 kg block sits on a frictionless horizontal table and is pushed by a constant horizontal "
                     "force of 10 N. What is the acceleration of the block?", answer="5 m/s^2")
    stage = SinkStage(cfg, TOPIC)
    stage.process(messages([*qas, make_qa(base[0], answer="again"), leaked]))
    stage.process(messages(qas[:2]))  # replays of records already decided
    stage.close()
    assert stage.totals == {"kept": 9, "drop:duplicate": 1, "drop:contaminated": 1, "replays": 2, "shards": 1}
    stage.on_revoke({TP})  # what the consumer does as it stops: the durable figures stay
    assert stage.totals == {"kept": 9, "drop:duplicate": 1, "drop:contaminated": 1, "replays": 2, "shards": 1}
    root = Path(cfg.output_dir)
    card = (root / "README.md").read_text()
    for name in ("disciplines", "difficulty", "dropped"):
        assert f"](plots/{name}.svg)" in card
        svg = ET.parse(root / "plots" / f"{name}.svg").getroot()  # well-formed, standalone SVG
        assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("data-chart") == name
    bars = {g.get("data-label"): float(g.get("data-value"))
            for g in ET.parse(root / "plots" / "disciplines.svg").getroot().iter("{http://www.w3.org/2000/svg}g")}
    assert bars == {"physics": 3 / 9, "mathematics": 3 / 9, "history": 3 / 9}
    dropped = {g.get("data-label"): float(g.get("data-value"))
               for g in ET.parse(root / "plots" / "dropped.svg").getroot().iter("{http://www.w3.org/2000/svg}g")}
    assert dropped == manifest(cfg)["totals"]["dropped"] == {"duplicate": 1, "contaminated": 1}
    rows = [json.loads(x) for x in (root / "data/jsonl/part-p00000-00000.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and all(r["path_kps"] == ["force", "mass"] for r in rows)  # the walk's KPs travel with each row


def test_restart_keeps_dedup_state(sink_cfg, messages):
    cfg = sink_cfg()
    qs = random_questions(30, seed=6)
    first = SinkStage(cfg, TOPIC)
    first.process(messages([make_qa(q) for q in qs]))
    first.close()
    second = SinkStage(cfg, TOPIC)
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
    assert (Path(stage.cfg.output_dir) / "data/parquet/part-p00000-00000.parquet").exists()


def test_uncommitted_files_from_a_crash_are_overwritten(sink_cfg, messages):
    cfg = sink_cfg()
    stage = SinkStage(cfg, TOPIC)
    stage.process(messages([make_qa(q) for q in random_questions(3, seed=9)]))
    stage.close()
    # A crash after writing shard 1 but before its manifest: the stray shard must not survive.
    stray = Path(cfg.output_dir) / "data/jsonl/part-p00000-00001.jsonl"
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
    assert fs.exists("/linksyn-test/ds/data/parquet/part-p00000-00000.parquet")
    assert fs.exists("/linksyn-test/ds/.sink-state/partitions/00000/manifest.json")
    assert fs.exists("/linksyn-test/ds/README.md")
    restarted = SinkStage(cfg, TOPIC)  # its index (in a temporary folder) is rebuilt from the chunks
    restarted.process(messages([make_qa(q, answer="again") for q in random_questions(3, seed=11)]))
    restarted.close()
    assert json.loads(fs.cat("/linksyn-test/ds/.sink-state/partitions/00000/manifest.json"))["totals"]["dropped"] == {
        "duplicate": 3}
    fs.rm("/linksyn-test", recursive=True)


def test_minhash_settings_change_is_refused(sink_cfg, messages):
    cfg = sink_cfg()
    s = SinkStage(cfg, TOPIC)
    s.process(messages([make_qa(q) for q in random_questions(2)]))
    s.close()
    with pytest.raises(SinkStateError, match="MinHash"):
        SinkStage(sink_cfg(minhash_perm=64), TOPIC)  # at start, before any record


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
        bus.produce(topics.synth_qa, qa.SerializeToString(), key=question_key(qa.question))
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
    m = [manifest(cfg, p) for p in (0, 1)]
    assert sum(x["totals"]["records"] for x in m) == 40
    assert [x["totals"]["dropped"] for x in m if x["totals"]["dropped"]] == [{"duplicate": 1}]
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


def test_records_keyed_otherwise_are_published_again_under_their_question(sink_cfg, messages):
    stage = SinkStage(sink_cfg(), TOPIC)
    qas = [make_qa(q) for q in random_questions(3, seed=13)]
    results = stage.process(messages(qas, key=lambda qa: qa.id.encode()))
    assert [len(r.outputs) for r in results] == [1, 1, 1] and stage.rekeyed == 3
    for qa, r in zip(qas, results):
        out = r.outputs[0]
        assert out.topic == TOPIC and out.key == question_key(qa.question) and out.value == qa.SerializeToString()
    stage.close()
    assert stage.dataset_totals.records == 0 and not (Path(stage.cfg.output_dir) / ".sink-state" / "partitions").exists()


def test_partitions_keep_their_own_state_and_commit_points(sink_cfg):
    clock = [0.0]
    stage = SinkStage(sink_cfg(flush_interval_s=10), TOPIC, clock=lambda: clock[0])
    p0, p1 = MessageFactory(0), MessageFactory(1)
    qs = random_questions(6, seed=14)
    stage.process(p0([make_qa(q) for q in qs[:3]]) + p1([make_qa(q) for q in qs[3:]]))
    clock[0] = 11
    stage.tick()  # both windows flushed
    stage.process(p1([make_qa(q) for q in random_questions(2, seed=15)]))
    tp0, tp1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    assert stage.committable({tp0: 3, tp1: 5}) == {tp0: 3, tp1: 3}  # partition 1 holds back to its window
    stage.close()
    assert manifest(stage.cfg, 0)["totals"]["records"] == 3 and manifest(stage.cfg, 1)["totals"]["records"] == 5
    card = (Path(stage.cfg.output_dir) / "README.md").read_text()
    assert "- records: 8" in card  # the card sums every partition's manifest


def test_a_revoked_partition_forgets_its_window_and_its_next_owner_restores_it(sink_cfg):
    cfg = sink_cfg(flush_interval_s=10)
    tp = TopicPartition(TOPIC, 0)
    qs = random_questions(10, seed=16)
    first = SinkStage(cfg, TOPIC)
    msgs = MessageFactory(0)
    first.process(msgs([make_qa(q) for q in qs[:5]]))
    first.flush()  # durable: offsets 0..4
    first.process(msgs([make_qa(q) for q in qs[5:]]))  # pending: offsets 5..9
    assert first.committable({tp: 10}) == {tp: 5}
    first.on_revoke({tp})
    assert first.committable({tp: 10}) == {tp: 10}  # nothing held for a partition it no longer has
    late = first.process(MessageFactory(0)([make_qa("a late record of the revoked partition?")]))
    assert late[0].error and "revoked" in late[0].error and not late[0].permanent
    # Another replica (its own index folder) takes the partition: the records after the commit come again, and so
    # does an exact duplicate of a durable one.
    second = SinkStage(cfg.model_copy(update={"index_dir": str(Path(cfg.output_dir).parent / "replica-2")}), TOPIC)
    redelivered = MessageFactory(0)
    redelivered.offset = 5
    second.process(redelivered([make_qa(q) for q in qs[5:]] + [make_qa(qs[0], answer="other")]))
    second.close()
    m = manifest(cfg)
    assert m["totals"]["records"] == 10 and m["totals"]["dropped"] == {"duplicate": 1}
    assert second.stats()["partitions"]["0"]["chunks_applied_at_restore"] == 1  # built from the first's chunk
    first.on_assign({tp})
    assert first.process(MessageFactory(0)([make_qa(qs[1])]))[0].error is None  # assigned again: it decides


def test_index_lost_or_behind_is_rebuilt_from_the_chunks(sink_cfg, messages):
    import shutil

    cfg = sink_cfg()
    qs = random_questions(20, seed=17)
    stage = SinkStage(cfg, TOPIC)
    stage.process(messages([make_qa(q) for q in qs[:10]]))
    stage.flush()
    stage.process(messages([make_qa(q) for q in qs[10:]]))
    stage.close()
    index = Path(cfg.output_dir) / ".sink-state" / "index"
    shutil.rmtree(index)  # a replica rescheduled onto an empty volume
    again = SinkStage(cfg, TOPIC)
    again.process(messages([make_qa(q, answer="x") for q in (qs[3], qs[15])] + [make_qa(q) for q in qs[:2]]))
    again.close()
    m = manifest(cfg)
    assert m["totals"]["dropped"] == {"duplicate": 2} and again.replays == 2
    assert again.stats()["partitions"]["0"]["chunks_applied_at_restore"] == 2


def test_near_duplicate_window_survives_a_restart(sink_cfg, messages):
    cfg = sink_cfg(near_dup_window=100)
    base = random_questions(30, seed=18, words=24)
    stage = SinkStage(cfg, TOPIC)
    stage.process(messages([make_qa(q) for q in base]))
    stage.close()
    again = SinkStage(cfg, TOPIC)
    again.process(messages([make_qa(base[4].rsplit(" ", 2)[0] + " case four?")]))
    again.close()
    assert manifest(cfg)["totals"]["dropped"] == {"near_duplicate": 1}
    assert again.stats()["partitions"]["0"]["near_dup_window"] == 30


def test_old_single_replica_state_is_refused_at_start(sink_cfg):
    cfg = sink_cfg()
    state = Path(cfg.output_dir) / ".sink-state"
    state.mkdir(parents=True)
    (state / "manifest.json").write_text('{"version": 1}')
    with pytest.raises(SinkStateError, match="single-replica"):
        SinkStage(cfg, TOPIC)


def test_full_shards_are_written_at_once_and_the_rest_stays_pending(sink_cfg, messages):
    stage = SinkStage(sink_cfg(shard_records=4), TOPIC)
    qs = random_questions(6, seed=19)
    stage.process(messages([make_qa(q) for q in qs]))  # offsets 0..5: shard 0 holds 4, records 4 and 5 wait
    tp = TopicPartition(TOPIC, 0)
    assert stage.committable({tp: 6}) == {tp: 4} and stage.stats()["pending_records"] == 2
    # The pending ones are still known: an exact duplicate of one of them is dropped, a replay skipped.
    stage.process(messages([make_qa(qs[5], answer="other"), make_qa(qs[4])]))
    stage.close()
    m = manifest(stage.cfg)
    assert [s["records"] for s in m["shards"]] == [4, 2] and m["totals"]["dropped"] == {"duplicate": 1}
    assert stage.replays == 1
