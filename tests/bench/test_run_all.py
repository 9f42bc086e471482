"""bench/run_all.py: running benches as processes (ok, failed, timed out) and the report it writes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench import run_all
from bench.run_all import Aim, Bench, BenchRun, Figure, render_markdown

ROOT = Path(run_all.__file__).resolve().parents[1]


def header(quick: bool = True) -> dict:
    return {
        "date": "2026-01-02 03:04 UTC", "command": ".venv/bin/python bench/run_all.py --quick", "quick": quick,
        "wall_s": 42.0, "not_run": ["probe"],
        "git": {"commit": "abc123", "branch": "main", "uncommitted_changes": False},
        "machine": {"cpu": "Test CPU 9000", "cpus": 2, "cpus_usable": 2, "ram_gib": 24.0, "gpu": "none",
                    "os": "Linux 6", "python": "3.11.7", "versions": {"torch": "2.13.0", "numpy": "2.4.6"},
                    "niceness": 5, "load_average": (1.0, 1.5, 2.0)},
    }


def test_markdown_from_fixed_figures_has_machine_summary_tables_and_the_failure() -> None:
    ok = BenchRun("bus", ".venv/bin/python bench/bus.py --repeat 1", "ok", "records/s through the buses",
                  returncode=0, wall_s=12.3, load_before=(1.0, 1.0, 1.0), load_after=(2.0, 1.5, 1.2),
                  figures=[Figure("kafka produce, end to end", 8000.0, "records/s", aim=Aim(">=", 10_000)),
                           Figure("memory produce, end to end", 250_000.0, "records/s", "kafka produce", 8000.0,
                                  aim=Aim(">=", 200_000)),
                           Figure("pass-through", 95.0, "tokens/s", "direct", 100.0, aim=Aim(">=", 0.95, on="ratio")),
                           Figure.skip("[real] every figure", "/data/seeds not found")],
                  notes=["12 partitions"], stdout_tail="bench output line")
    failed = BenchRun("graph", ".venv/bin/python bench/graph.py", "failed", "graph ingest", returncode=1, wall_s=3.0,
                      load_before=(1.0, 1.0, 1.0), load_after=(1.0, 1.0, 1.0), reason="exit status 1",
                      stderr_tail="Traceback (most recent call last):\nValueError: bad size -3")
    md = render_markdown(header(), [ok, failed])

    assert "## Machine" in md and "Test CPU 9000, 2 CPUs" in md and "- GPU: none" in md
    assert "torch 2.13.0" in md and "git: abc123" in md and "2026-01-02 03:04 UTC" in md
    assert "```bash\n.venv/bin/python bench/run_all.py --quick\n```" in md
    assert "| [bus](#bus) | ok | 12 | 3 (+1 skipped) | 2/3 |" in md
    assert "| [graph](#graph) | failed | 3 | 0 | — |" in md
    assert "`bench/probe.py`" in md  # a bench script run_all does not know is named, not silently left out
    assert "| figure | value | baseline | ratio | aim | met? | note |" in md
    assert "| kafka produce, end to end | 8,000 records/s | — | — | >= 10,000 records/s | **no** |" in md
    assert ("| memory produce, end to end | 250,000 records/s | 8,000 records/s (kafka produce) | 31.2x | "
            ">= 200,000 records/s | yes |") in md
    assert "| pass-through | 95.0 tokens/s | 100 tokens/s (direct) | 0.950x | ratio >= 0.95 | yes |" in md
    assert "skipped: /data/seeds not found" in md and "Skipped here: [real] every figure" in md
    graph = md[md.index("## graph"):]
    assert "**Failed:** exit status 1" in graph and "ValueError: bad size -3" in graph
    assert "| figure |" not in graph  # no empty table for a bench without figures


def test_figure_ratio_and_aims() -> None:
    assert Figure("x", 50.0, "u", "base", 200.0).ratio == 0.25
    assert Figure("x", 50.0, "u", "base", 200.0, ratio=4.0).ratio == 4.0  # a bench's own ratio wins
    assert Figure("x", 9.5, "s", aim=Aim("<", 10)).met is True
    assert Figure("x", 10.0, "s", aim=Aim("<", 10)).met is False
    assert Figure.skip("x", "absent", aim=Aim(">=", 1)).met is None
    assert Figure("x", 1.0).met is None
    f = Figure("x", 3.0, "u", "b", 2.0, aim=Aim(">=", 1.2, on="ratio"), note="n")
    assert Figure.from_dict(json.loads(json.dumps(f.to_dict()))) == f


def write_script(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_failed_and_timed_out_benches_are_reported_with_reason(tmp_path: Path, monkeypatch) -> None:
    write_script(tmp_path, "boom", """
        import sys
        print("started")
        print("ValueError: --sizes must be positive, got -3", file=sys.stderr)
        sys.exit(3)
    """)
    write_script(tmp_path, "sleepy", """
        import time
        print("sleeping", flush=True)
        time.sleep(120)
    """)
    monkeypatch.setattr(run_all, "BENCH_DIR", tmp_path)
    boom = run_all.run_bench(Bench("boom", "fails", quick=("--x", "1")), True, None, tmp_path, echo=False)
    assert (boom.status, boom.returncode, boom.reason) == ("failed", 3, "exit status 3")
    assert "--sizes must be positive, got -3" in boom.stderr_tail and boom.stdout_tail == "started"
    assert boom.command.endswith("boom.py --x 1")
    assert "--sizes must be positive" in (tmp_path / "run_all-boom.log").read_text()

    sleepy = run_all.run_bench(Bench("sleepy", "hangs", quick=(), quick_timeout_s=2), True, None, tmp_path, echo=False)
    assert sleepy.status == "timed out" and "2 s" in sleepy.reason and sleepy.stdout_tail == "sleeping"


def test_figures_written_with_json_are_read_back(tmp_path: Path, monkeypatch) -> None:
    write_script(tmp_path, "tiny", f"""
        import argparse, sys
        sys.path.insert(0, {str(ROOT / 'bench')!r})
        from report import Aim, Figure, add_json_option, write_json
        ap = argparse.ArgumentParser()
        add_json_option(ap)
        args = ap.parse_args()
        write_json(args.json, [Figure("rate", 120.0, "1/s", "base", 60.0, aim=Aim(">=", 100)),
                               Figure.skip("real rows", "data absent")], ["a note"])
    """)
    monkeypatch.setattr(run_all, "BENCH_DIR", tmp_path)
    r = run_all.run_bench(Bench("tiny", "writes figures", quick=()), True, None, tmp_path, echo=False)
    assert r.status == "ok" and r.reason == "" and r.notes == ["a note"]
    assert [(f.name, f.value, f.ratio, f.met, f.skipped) for f in r.figures] == [
        ("rate", 120.0, 2.0, True, None), ("real rows", None, None, None, "data absent")]


def test_quick_run_of_one_real_bench_writes_results(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--only", "runtime_loop",
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## Machine" in md and "- CPU: " in md and "- GPU: " in md and "numpy " in md
    assert "--quick --only runtime_loop --out" in md
    assert "| [runtime_loop](#runtime_loop) | ok |" in md
    assert "| figure | value | baseline | ratio | aim | met? | note |" in md
    assert "| ConsumerLoop defaults (batch 64, 4 workers, in-flight 256) | " in md
    data = json.loads((tmp_path / "results.json").read_text())
    (bench,) = data["benches"]
    assert bench["status"] == "ok" and bench["returncode"] == 0 and len(bench["figures"]) == 3
    for f in bench["figures"]:
        assert f["value"] > 0 and f["baseline_value"] > 0
        assert f["ratio"] == pytest.approx(f["value"] / f["baseline_value"])
    assert (tmp_path / "run_all-runtime_loop.log").is_file()


def test_unknown_bench_name_is_an_error_naming_the_known_ones(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        run_all.main(["--only", "bus,nope"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown bench(es) nope" in err and "runtime_loop" in err


def test_what_a_bench_leaves_running_is_stopped(tmp_path: Path, monkeypatch) -> None:
    write_script(tmp_path, "leaky", """
        import subprocess
        child = subprocess.Popen(["sleep", "300"])
        print(child.pid, flush=True)
    """)
    monkeypatch.setattr(run_all, "BENCH_DIR", tmp_path)
    r = run_all.run_bench(Bench("leaky", "leaves a child", quick=()), True, None, tmp_path, echo=False)
    assert r.status == "ok"
    status = Path(f"/proc/{int(r.stdout_tail)}/status")

    def gone() -> bool:  # or a zombie awaiting its reaper
        try:
            return "State:\tZ" in status.read_text()
        except OSError:
            return True

    for _ in range(100):  # the signal is delivered asynchronously: give the child a moment to act on it
        if gone():
            break
        time.sleep(0.1)
    assert gone()
