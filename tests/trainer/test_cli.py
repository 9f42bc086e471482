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
    assert res.exit_code == 2 and "no MMLU-style .csv files" in res.output
