"""The global near-duplicate pass (datatrove's MinHash deduplication) over a dataset the sink wrote: what the
stream could not see (near duplicates in other partitions) is removed, the rest is kept, in the dataset's layout."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
from linksyn.common.bus.base import murmur2_partition
from linksyn.common.ids import question_key
from linksyn.sink.near_dups import NearDupPass, read_columns
from linksyn.sink.stage import SinkStage

from tests.sink.sink_fixtures import TOPIC, MessageFactory, make_qa, random_questions


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_removes_near_duplicates_across_partitions(sink_cfg, tmp_path, fmt):
    cfg = sink_cfg(formats=[fmt])
    base = random_questions(60, seed=21, words=30)
    # A near duplicate of each of the first 20, made to land in another partition than its original.
    pairs = []
    for q in base:
        for tail in ("indeed?", "again?", "now?", "then?", "too?"):
            v = q.rsplit(" ", 1)[0] + " " + tail
            if murmur2_partition(question_key(v), 2) != murmur2_partition(question_key(q), 2):
                pairs.append((q, v))
                break
        if len(pairs) == 20:
            break
    near = [v for _, v in pairs]
    factories = {0: MessageFactory(0), 1: MessageFactory(1)}
    stage = SinkStage(cfg, TOPIC)
    for q in base + near:
        p = murmur2_partition(question_key(q), 2)
        stage.process(factories[p]([make_qa(q)]))
    stage.close()
    assert stage.dataset_totals.records == 80  # the stream kept them: they were in other partitions

    out = tmp_path / "deduplicated"
    report = NearDupPass.from_sink(cfg, cfg.output_dir, str(out), None, None, tasks=2, workers=1).run()
    assert report.removed == 20 and report.kept == 60 and report.fmt == fmt
    kept = [q for c in read_columns(str(out / "data" / fmt), fmt) for q in c["question"]]
    for q, v in pairs:
        assert (q in kept) != (v in kept)  # one of each pair
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(ds) == 60 and set(ds.column_names) >= {"id", "question", "answer", "source_seed_ids"}
    assert "- records: 60" in (out / "README.md").read_text()
    # Resumable: a second run finds every step done and changes nothing.
    again = NearDupPass.from_sink(cfg, cfg.output_dir, str(out), None, None, tasks=2, workers=1).run()
    assert (again.kept, again.removed) == (60, 20)


def test_missing_dataset_is_named(sink_cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset shards"):
        NearDupPass.from_sink(sink_cfg(), str(tmp_path / "nothing"), str(tmp_path / "out"), None, None, 1, 1)


def test_the_command_runs_datatrove_with_worker_processes(sink_cfg, tmp_path):
    import json
    import subprocess
    import sys

    import yaml

    cfg = sink_cfg(formats=["parquet", "jsonl"], shard_records=10)
    qs = random_questions(30, seed=22, words=30)
    near = [q.rsplit(" ", 1)[0] + " indeed?" for q in qs[:10]]
    stage = SinkStage(cfg.model_copy(update={"near_dup_window": 0}), TOPIC)  # the stream checks none
    stage.process(MessageFactory(0)([make_qa(q) for q in qs + near]))
    stage.close()
    config = tmp_path / "linksyn.yaml"
    config.write_text(yaml.safe_dump({"sink": {"output_dir": cfg.output_dir}}))
    linksyn = str(Path(sys.executable).with_name("linksyn"))
    out = tmp_path / "global"
    proc = subprocess.run([linksyn, "near-dups", "--config", str(config), "--out", str(out), "--tasks", "2",
                           "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"kept": 30, "removed": 10, "fmt": "parquet",
                                                                 "out": str(out)}
    assert sorted((out / "data" / "parquet").glob("*.parquet"))
    bad = subprocess.run([linksyn, "near-dups", "--config", str(config), "--out", cfg.output_dir],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "another folder" in bad.stderr
