"""Seeds to dataset with the real packaged SmolLM2, in-process and through a real OpenAI-compatible server on
loopback: `linksyn run` annotates, builds the graph, walks it, synthesizes, deduplicates and writes a dataset that
`datasets.load_dataset` reads, and every record's lineage points at input seeds and at a path of the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from linksyn.common.seeds import SeedReader

REPO = Path(__file__).resolve().parents[1]
REQUIRED = ("id", "question", "answer", "knowledge_points", "discipline", "difficulty", "source_seed_ids",
            "path_id", "model")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.mark.parametrize("backend", ["embedded", "openai"])
def test_seeds_to_dataset_with_real_smollm2(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join((REPO / "examples" / "seeds.jsonl").read_text().splitlines(keepends=True)[:10]))
    seed_ids = {s.id for s in SeedReader([seeds])}
    model = "embedded" if backend == "embedded" else request.getfixturevalue("openai_server").spec
    cfg = tmp_path / "linksyn.yaml"
    cfg.write_text(yaml.safe_dump({
        "extractor": {"model": model},
        "sampler": {"max_paths": 12},
        # SmolLM2-135M often echoes a seed; the copy filter has its own tests, here the plumbing is under test.
        "synth": {"model": model, "max_tokens": 256, "max_copy_overlap": 1.0},
    }))
    out = tmp_path / "run"
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("linksyn")), "run", "--seeds", str(seeds), "--out", str(out),
         "--config", str(cfg), "--timeout", "1500"],
        capture_output=True, text=True, timeout=1700)
    report = json.loads((out / "report.json").read_text())
    assert proc.returncode == 0, (report.get("error"), proc.stderr[-3000:])
    assert report["seeds_in"] == 10 and report["stages_ran"] == ["extractor", "graph", "sampler", "synth", "sink"]
    # Every seed is annotated or dead-lettered with a reason; none is lost.
    dead_seeds = report["dead_letters"]["by_service"].get("extractor", 0)
    assert report["annotated"] + dead_seeds == 10 and report["annotated"] >= 6, report["dead_letters"]
    assert report["paths"] == 12
    assert (out / "graph").is_dir()

    import datasets

    ds = datasets.load_dataset(str(out / "dataset"), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(ds) >= 1, report["stages"]["synth"]
    assert len(ds) <= report["synthesized"]
    assert len(set(ds["id"])) == len(ds)  # deduplicated by id
    path_ids = set()
    for rec in ds:
        for field in REQUIRED:
            assert rec[field] not in (None, "", []), (field, rec)
        assert set(rec["source_seed_ids"]) <= seed_ids, rec["source_seed_ids"]
        assert 1 <= rec["difficulty"] <= 5
        path_ids.add(rec["path_id"])
        if backend == "embedded":
            assert rec["model"] == "hf:SmolLM2-135M-Instruct"
        else:
            assert rec["model"].startswith("openai:")
    card = (out / "dataset" / "README.md").read_text()
    assert f"{len(ds)}" in card
