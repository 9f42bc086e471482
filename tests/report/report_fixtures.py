"""Outputs to report on, made by the real parts: a graph snapshot in a SnapshotStore, a dataset written by the sink's
stage, the sampler's own stats for the walks it drew, and a report.json shaped as linksyn.pipeline writes it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from linksyn.common.snapshots.graph import GraphSnapshot, StringTable
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.sampler.config import WalkParams
from linksyn.sampler.sampler import Sampler
from linksyn.sampler.targets import Targets
from linksyn.sink.config import SinkConfig
from linksyn.sink.stage import SinkStage

from tests.sampler.sampler_graphs import build_snapshot, random_seeds
from tests.sink.sink_fixtures import TOPIC, MessageFactory, make_qa, random_questions

ZH_QUESTIONS = ["一个长方形的长是8厘米，宽是5厘米，它的面积是多少？", "水的沸点在标准大气压下是多少摄氏度？",
                "唐朝的首都是哪座城市？", "光合作用需要哪些条件？"]
PATHS = 12


def graph_snapshot(n_seeds: int = 30, n_kps: int = 24, seed: int = 3) -> GraphSnapshot:
    """A small graph of random seeds, the first four with Chinese questions."""
    snap = build_snapshot(random_seeds(n_seeds, n_kps, np.random.default_rng(seed)))
    questions = [ZH_QUESTIONS[i] if i < len(ZH_QUESTIONS) else q
                 for i, q in enumerate(random_questions(n_seeds, seed=seed, words=12))]
    return dataclasses.replace(snap, seed_question=StringTable.from_list(questions))


def write_dataset(root: Path, snap: GraphSnapshot, n: int = 10, shard_records: int = 10_000) -> SinkStage:
    """n kept QA (the first two in Chinese) drawn from the graph's seeds, and one duplicate, through the sink."""
    seed_ids = snap.seed_ids.to_list()
    stage = SinkStage(SinkConfig(output_dir=str(root), flush_interval_s=3600.0, shard_records=shard_records), TOPIC)
    qas = []
    for i, q in enumerate(random_questions(n, seed=9, words=20)):
        first = i % (len(seed_ids) - 2)
        seeds = seed_ids[first: first + 3]
        own = snap.seed_kp_indices[snap.seed_kp_indptr[first]: snap.seed_kp_indptr[first + 1]]
        kps = [snap.kp_text[int(k)] for k in own]
        zh = i < 2
        qas.append(make_qa(ZH_QUESTIONS[i] + f"（第{i}题）" if zh else q, answer=f"answer {i}", source_seed_ids=seeds,
                           path_kps=kps[:3], path_id=f"path-{i}", lang="zh" if zh else "en",
                           discipline=snap.disciplines[i % len(snap.disciplines)], difficulty=1 + i % 5,
                           models=["hf:SmolLM2-135M-Instruct"], prompt_tokens=100 + i, completion_tokens=50))
    stage.process(MessageFactory()([*qas, make_qa(qas[3].question, answer="other")]))
    stage.close()
    return stage


def run_report(snap: GraphSnapshot, sink: SinkStage, sampler_stats: dict[str, Any]) -> dict[str, Any]:
    """A report.json of a run that made these outputs (the shape linksyn.pipeline writes)."""
    kept = sink.totals["kept"]
    return {
        "status": "ok",
        "seeds_in": snap.n_seeds + 1,
        "seeds_rejected": {"count": 2, "listed": 2, "rows": [
            {"path": "seeds.jsonl", "line": 4, "reason": "invalid JSON: Expecting value"},
            {"path": "seeds.jsonl", "line": 9, "reason": "missing 'question'"}]},
        "seed_sources": [{"path": "seeds.jsonl", "format": "jsonl"}],
        "annotated": snap.n_seeds,
        "paths": PATHS,
        "synthesized": kept + 1,
        "dead_letters": {"count": 1, "by_service": {"extractor": 1}, "by_error_type": {"LLM reply": 1}, "records": [
            {"service": "extractor", "topic": "linksyn.seeds", "partition": 0, "offset": 7, "attempts": 3,
             "error": "LLM reply: not JSON"}]},
        "stages_selected": ["extractor", "graph", "sampler", "synth", "sink"],
        "stages_ran": ["extractor", "graph", "sampler", "synth", "sink"],
        "stages_not_available": [],
        "stages": {
            "extractor": {"status": "ran", "build_s": 2.5, "wall_s": 40.0, "counts": {
                "records_in": snap.n_seeds + 1, "records_out": snap.n_seeds, "records_failed": 3, "dead_letters": 1},
                "totals": {"annotated": snap.n_seeds, "failed": 3, "prompt_tokens": 9000, "completion_tokens": 1500,
                           "kps_kept": 70, "kps_merged": 6, "kps_ungrounded": 2, "kps_dropped_choice_label": 4,
                           "kps_dropped_number": 0, "kps_dropped_fragment": 7},
                "details": {"annotator": "llm@extract-v1/hf:SmolLM2-135M-Instruct"}},
            "graph": {"status": "ran", "build_s": 0.4, "wall_s": 41.0, "counts": {"records_in": snap.n_seeds},
                      "details": {"nodes": snap.n_kps, "edges": snap.n_edges, "seeds": snap.n_seeds, "components": 2,
                                  "snapshot_version": snap.version}},
            "sampler": {"status": "ran", "build_s": 0.0, "wall_s": 41.5, "counts": {"records_in": 0},
                        "details": sampler_stats},
            "synth": {"status": "ran", "build_s": 3.0, "wall_s": 95.0, "counts": {"records_in": PATHS},
                      "totals": {"paths": PATHS, "qa": kept + 1, "failed": 0, "drop:seed_copy": 4,
                                 "drop:wrong_language": 1, "prompt_tokens": 12000, "completion_tokens": 2400},
                      "details": {"generator": "hf:SmolLM2-135M-Instruct", "refiner": None}},
            "sink": {"status": "ran", "build_s": 0.1, "wall_s": 95.2, "counts": {"records_in": kept + 1},
                     "totals": dict(sink.totals)},
            "trainer": {"status": "not selected"},
        },
        "wall_s": 96.0,
    }


def make_run(folder: Path, n_qa: int = 10) -> dict[str, Any]:
    """A run folder (report.json, graph/, dataset/) like `linksyn run` leaves; returns its report."""
    snap = graph_snapshot()
    SnapshotStore(folder / "graph").write(snap)
    sampler = Sampler(snap, WalkParams(), Targets(default="natural"), rng_seed=0)
    sampler.draw(PATHS)
    sink = write_dataset(folder / "dataset", snap, n_qa)
    report = run_report(snap, sink, json.loads(json.dumps(sampler.stats())))
    (folder / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return report
