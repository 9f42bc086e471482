"""`linksyn probe` end to end on a tiny saved model and a fixture benchmark."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from linksyn.cli import app
from tests.trainer.test_probes import write_mmlu


def test_probe_prints_groups_and_writes_json(tmp_path: Path, tiny_spec: str) -> None:
    bench = write_mmlu(tmp_path / "mmlu" / "test")
    out = tmp_path / "probe.json"
    res = CliRunner().invoke(app, ["probe", "--benchmark", f"mmlu:{bench}", "--model", tiny_spec, "--batch-size", "2",
                                   "--precision", "bf16", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "STEM" in res.output and "(n=3)" in res.output
    data = json.loads(out.read_text())
    r = data["results"][f"mmlu:{bench}"]
    assert data["precision"] == "bf16" and r["n"] == 3 and r["groups"]["STEM"]["n"] == 3
    assert sum(s["n"] for s in r["subjects"].values()) == 3
    assert sum(r["predicted"].values()) == 3 and set(r["predicted"]) <= set("ABCD")
    assert "predicted: " in res.output


def test_probe_rejects_unknown_precision_and_missing_benchmark(tmp_path: Path, tiny_spec: str) -> None:
    bench = write_mmlu(tmp_path / "mmlu" / "test")
    res = CliRunner().invoke(app, ["probe", "--benchmark", f"mmlu:{bench}", "--model", tiny_spec,
                                   "--precision", "fp16"])
    assert res.exit_code == 2 and "'fp16'" in res.output and "bf16" in res.output
    res = CliRunner().invoke(app, ["probe", "--benchmark", f"mmlu:{tmp_path / 'none'}", "--model", tiny_spec])
    assert res.exit_code == 2 and "does not exist" in res.output
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(app, ["probe", "--benchmark", f"mmlu:{tmp_path / 'empty'}", "--model", tiny_spec])
    assert res.exit_code == 2 and "holds no .csv files" in res.output


def test_per_question_file_and_paired_comparison_with_a_baseline(tmp_path: Path, tiny_spec: str) -> None:
    bench = write_mmlu(tmp_path / "mmlu" / "test")
    first = tmp_path / "first.jsonl"
    res = CliRunner().invoke(app, ["probe", "--benchmark", f"mmlu:{bench}", "--model", tiny_spec,
                                   "--per-question", str(first)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in first.read_text().splitlines()]
    assert [(r["subject"], r["row"], r["answer"]) for r in rows] == [
        ("college_physics", 0, 1), ("college_physics", 1, 0), ("high_school_biology", 0, 1)]
    assert all(r["pick"] == max(range(4), key=lambda k: r["logliks"][k]) for r in rows)
    # A baseline that was right exactly where this model is wrong, and wrong where it is right.
    flipped = [{**r, "pick": (r["pick"] + 1) % 4 if r["pick"] == r["answer"] else r["answer"]} for r in rows]
    base = tmp_path / "base.jsonl"
    base.write_text("".join(json.dumps(r) + "\n" for r in flipped))
    right = sum(r["pick"] == r["answer"] for r in rows)
    out = tmp_path / "p.json"
    res = CliRunner().invoke(app, ["probe", "--benchmark", f"mmlu:{bench}", "--model", tiny_spec,
                                   "--baseline", str(base), "--json", str(out)])
    assert res.exit_code == 0, res.output
    vs = json.loads(out.read_text())["results"][f"mmlu:{bench}"]["vs_baseline"]
    assert (vs["n"], vs["gained"], vs["lost"]) == (3, right, 3 - right)
    assert "vs baseline (3 questions in both)" in res.output
    assert "debiased (the model's prior over choice positions taken out): " in res.output
    # The debiased comparison re-picks from each file's log-likelihoods: the baseline's are this model's own, so
    # nothing changes there, whatever picks the baseline file claims.
    deb = json.loads(out.read_text())["results"][f"mmlu:{bench}"]["vs_baseline_debiased"]
    assert (deb["n"], deb["gained"], deb["lost"]) == (3, 0, 0)
    no_ll = tmp_path / "no_ll.jsonl"
    no_ll.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "logliks"}) + "\n" for r in flipped))
    res = CliRunner().invoke(app, ["probe", "--benchmark", f"mmlu:{bench}", "--model", tiny_spec,
                                   "--baseline", str(no_ll)])
    assert res.exit_code == 0, res.output
    assert "vs baseline (3 questions in both)" in res.output and "has no choice log-likelihoods" in res.output
    res = CliRunner().invoke(app, ["probe", "--benchmark", f"mmlu:{bench}", "--model", tiny_spec,
                                   "--baseline", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2 and "is not a file" in res.output
    (tmp_path / "bad.jsonl").write_text('{"benchmark": "x"}\n')
    res = CliRunner().invoke(app, ["probe", "--benchmark", f"mmlu:{bench}", "--model", tiny_spec,
                                   "--baseline", str(tmp_path / "bad.jsonl")])
    assert res.exit_code == 2 and "bad.jsonl:1: no answer, pick, row, subject" in res.output
