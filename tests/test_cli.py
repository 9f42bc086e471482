"""The `linksyn` command line: help, run, serve, push (against the real Tansu broker), status (a real gRPC server)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from linksyn import cli, registry
from linksyn.cli import app
from linksyn.common.seeds import SeedReader
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SEEDS = FIXTURES / "seeds"
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})})


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LINKSYN_"):
            monkeypatch.delenv(key)


@pytest.fixture
def test_stages(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """linksyn.registry.SERVICES pointing at the small test stages in tests/fixtures/pipeline_stages."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    for mod in [m for m in sys.modules if m == "pipeline_stages" or m.startswith("pipeline_stages.")]:
        monkeypatch.delitem(sys.modules, mod)
    from pipeline_stages import SERVICES, STAGES

    monkeypatch.setattr(registry, "SERVICES", SERVICES)
    return STAGES


# ---- help -------------------------------------------------------------------------------------------------------


def test_help_lists_every_command_with_its_summary():
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    for command, words in [
        ("run", "in-memory bus"),
        ("serve", "Kafka bus"),
        ("push", "linksyn.seeds"),
        ("status", "health"),
        ("config", "configuration"),
        ("schema", "JSON Schema"),
    ]:
        line = next((x for x in result.output.splitlines() if x.lstrip("│ ").startswith(f"{command} ")), None)
        assert line is not None and words in line, (command, result.output)


@pytest.mark.parametrize("command", [["run"], ["serve"], ["push"], ["status"], ["schema"], ["config", "show"]])
def test_every_command_has_help_for_each_option(command: list[str]):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    cmd = cli.typer.main.get_command(app)
    for name in command:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    assert cmd.help and len(cmd.help) > 40
    for param in cmd.params:
        if param.name != "help":
            assert getattr(param, "help", None), f"{' '.join(command)}: {param.name} has no help"


def test_plugin_commands_are_mounted_lazily_when_their_module_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pkg = tmp_path / "plugin_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "graphcli.py").write_text(
        "import typer\n"
        "app = typer.Typer(help='graph tools')\n"
        "@app.command()\n"
        "def stats(top: int = typer.Option(3, help='How many.')):\n"
        "    '''Print the top KPs.'''\n"
        "    print(f'top={top}')\n"
        "@app.command()\n"
        "def other():\n"
        "    '''Another.'''\n"
    )
    (pkg / "samplecli.py").write_text(
        "import typer\n"
        "def sample(n: int = typer.Option(1, help='Paths.')):\n"
        "    '''Draw paths.'''\n"
        "    print(f'sampled {n}')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        cli,
        "PLUGINS",
        (
            cli.PluginCommand("graph", "plugin_pkg.graphcli", "app", "Graph things."),
            cli.PluginCommand("sample", "plugin_pkg.samplecli", "sample", "Sample things."),
            cli.PluginCommand("train", "plugin_pkg.absent", "train", "Not here."),
        ),
    )
    result = invoke("--help")
    assert "Graph things." in result.output and "Sample things." in result.output
    assert "Not here." not in result.output
    assert "plugin_pkg.graphcli" not in sys.modules  # listing does not import the plugin
    result = invoke("graph", "stats", "--top", "5")
    assert result.exit_code == 0, result.output
    assert "top=5" in result.output
    result = invoke("sample", "--n", "4")
    assert result.exit_code == 0 and "sampled 4" in result.output
    assert "Paths." in invoke("sample", "--help").output
    assert invoke("train").exit_code == 2  # absent module: no such command


# ---- run --------------------------------------------------------------------------------------------------------


def test_run_writes_report_with_seed_counts(test_stages, tmp_path: Path):
    out = tmp_path / "out"
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("runtime:\n  batch_wait_s: 0.01\n  commit_interval_s: 0.1\nbus:\n  topics:\n    partitions: 2\n")
    result = invoke(
        "run", "--seeds", str(SEEDS / "canonical.jsonl"), "--seeds", str(SEEDS / "mmlu"), "--out", str(out),
        "--config", str(cfg), "--stages", "collect,annotate,absent", "--timeout", "60",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["seeds_in"] == 4 + 4
    assert report["seeds_rejected"]["count"] == 5 + 2
    rows = {(Path(r["path"]).name, r["line"]) for r in report["seeds_rejected"]["rows"]}
    assert rows == {("canonical.jsonl", n) for n in (4, 5, 6, 7, 9)} | {("college_physics_dev.csv", n) for n in (3, 6)}
    assert report["stages_ran"] == ["annotate"]
    assert report["stages_not_available"] == ["absent"]
    assert report["stages"]["collect"]["status"] == "skipped"
    assert report["config_file"] == str(cfg)
    # The human summary: counts, rejected rows as file:line: reason, where the report is.
    assert "seeds in: 8, rejected rows: 7" in result.output
    assert f"{SEEDS / 'canonical.jsonl'}:4: invalid JSON" in result.output
    assert f"report: {out / 'report.html'} (figures: {out / 'report.json'})" in result.output
    assert result.output.count("report:") == 1
    # Each stage once, in its own terms; one without a phrasing of its own gets its loop's counts and totals.
    assert "  annotate: ran in " in result.output and "in 8, out 8" in result.output
    assert "  collect: skipped (no input: upstream stage 'absent' not available in this build)" in result.output
    assert "  absent: not available in this build" in result.output


def test_run_summary_lists_what_a_stage_dropped_and_why(test_stages, tmp_path: Path):
    seeds = tmp_path / "seeds.jsonl"
    rows = [{"question": f"Question {i} about topic {i}", "answer": str(i)} for i in range(3)]
    rows.append({"question": "A POISON question", "answer": "x"})
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = invoke("run", "--seeds", str(seeds), "--out", str(tmp_path / "out"), "--stages", "annotate",
                    "--timeout", "60")
    assert result.exit_code == 0, result.output
    # The test stage counts its drops as `drop:<reason>` totals, as the synth does.
    assert "dropped: poison 1" in result.output


def test_run_rejects_every_hostile_seed_row_and_goes_on(test_stages, tmp_path: Path):
    """Issue 21: one crafted row (100,000-deep JSON, a lone surrogate, a 5000-digit number; a CSV field over
    128 KiB) used to end the whole run."""
    from tests.hostile_inputs import CSV_FIELD_OVER_128K, GOOD_ROW, JSONL_ROWS

    jsonl = tmp_path / "seeds.jsonl"
    jsonl.write_text("".join(f"{json.dumps(GOOD_ROW)}\n{row}\n" for row in JSONL_ROWS.values()), encoding="utf-8")
    csv_file = tmp_path / "wide_test.csv"
    csv_file.write_text(f'"{CSV_FIELD_OVER_128K}",a,b,c,d,A\nq,a,b,c,d,B\n', encoding="utf-8")
    out = tmp_path / "out"
    result = invoke("run", "--seeds", str(csv_file), "--seeds", str(jsonl), "--out", str(out), "--stages", "annotate",
                    "--timeout", "60")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["seeds_in"] == 2 + len(JSONL_ROWS)
    assert sorted(r["line"] for r in report["seeds_rejected"]["rows"]) == list(range(2, 2 * len(JSONL_ROWS) + 1, 2))


def test_run_exits_1_when_a_stage_fails(test_stages, tmp_path: Path):
    result = invoke("run", "--seeds", str(SEEDS / "gsm8k.jsonl"), "--out", str(tmp_path), "--stages", "broken_build")
    assert result.exit_code == 1
    assert "model file missing" in result.output
    assert json.loads((tmp_path / "report.json").read_text())["status"] == "failed"


def test_run_refuses_an_earlier_run_unless_overwrite(test_stages, tmp_path: Path):
    args = ["run", "--seeds", str(SEEDS / "gsm8k.jsonl"), "--out", str(tmp_path), "--stages", "annotate"]
    assert invoke(*args).exit_code == 0
    (tmp_path / "graph").mkdir()
    (tmp_path / "mine.txt").write_text("keep me")
    refused = invoke(*args)
    assert refused.exit_code == 2
    assert "holds a previous run (report.json, report.html, graph)" in refused.output
    again = invoke(*args, "--overwrite")
    assert again.exit_code == 0, again.output
    assert not (tmp_path / "graph").exists() and (tmp_path / "mine.txt").read_text() == "keep me"
    assert json.loads((tmp_path / "report.json").read_text())["seeds_in"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "nope.jsonl"], "seed path 'nope.jsonl' does not exist"),
        (["--seeds", str(SEEDS / "gsm8k.jsonl"), "--stages", "extractor,bogus"], "unknown service(s) 'bogus'"),
        (["--seeds", str(SEEDS / "gsm8k.jsonl"), "--format", "xml"], "unknown seed format 'xml'"),
    ],
)
def test_run_argument_errors(tmp_path: Path, args: list[str], message: str):
    result = invoke("run", *args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_run_with_the_stages_of_this_build_on_example_seeds(tmp_path: Path):
    """What `bash scripts/demo.sh` runs, on the first 8 example seeds (the CPU model is slow): every default stage
    of this build that exists, with all its upstream stages, must run and finish."""
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join((REPO / "examples" / "seeds.jsonl").read_text().splitlines(keepends=True)[:8]))
    out = tmp_path / "demo"
    result = invoke("run", "--seeds", str(seeds), "--out", str(out), "--timeout", "900")
    report = json.loads((out / "report.json").read_text())
    assert result.exit_code == 0, f"{report.get('error')}\n{result.output}"
    assert report["seeds_in"] == 8 and report["seeds_rejected"]["count"] == 0
    available = registry.available()
    for i, name in enumerate(registry.DEFAULT_STAGES):
        status = report["stages"][name]["status"]
        if not available[name]:
            assert status == "not available in this build", name
        elif all(available[n] for n in registry.DEFAULT_STAGES[:i]):
            assert status == "ran", (name, report["stages"][name])


# ---- serve ------------------------------------------------------------------------------------------------------


def test_serve_unknown_service():
    result = invoke("serve", "frobnicator")
    assert result.exit_code == 2
    assert "unknown service 'frobnicator'" in result.output and "extractor" in result.output


def test_serve_a_service_missing_from_the_build(test_stages):
    result = invoke("serve", "absent")
    assert result.exit_code == 2
    assert "service 'absent' is not available in this build" in result.output


# ---- push (real Kafka: Tansu) -----------------------------------------------------------------------------------


@pytest.mark.kafka
def test_push_delivers_every_seed_to_kafka(kafka_bootstrap: str, make_bus, unique_topic, unique_group):
    from linksyn.common.bus.base import TopicPartition
    from linksyn.v1.records_pb2 import Seed

    topic = unique_topic("seeds")
    paths = [SEEDS / "canonical.jsonl", SEEDS / "gsm8k.jsonl", SEEDS / "math.jsonl", SEEDS / "mmlu", SEEDS / "cmmlu"]
    expected = {s.id: s for s in SeedReader(paths)}
    result = invoke(
        "push", *map(str, paths), "--bootstrap", kafka_bootstrap,
        env={"LINKSYN_BUS__TOPICS__SEEDS": topic, "LINKSYN_BUS__TOPICS__PARTITIONS": "3"},
    )
    assert result.exit_code == 0, result.output
    assert f"pushed {len(expected)} seed(s) to {topic}" in result.output
    assert f"{SEEDS / 'gsm8k.jsonl'}:3: GSM8K answer has no final" in result.output

    bus = make_bus("kafka")
    assert bus.partitions_for(topic) == 3
    consumer = bus.consumer(unique_group("push-check"), [topic])
    got: dict[str, Seed] = {}
    deadline = time.monotonic() + 60
    while len(got) < len(expected) and time.monotonic() < deadline:
        for m in consumer.poll(timeout_s=1.0):
            seed = Seed.FromString(m.value)
            assert m.key == seed.id.encode()
            assert m.header("content-type") == b"application/x-protobuf"  # self-describing for other consumers
            got[seed.id] = seed
    ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(3)])
    consumer.close()
    assert got == expected
    assert sum(ends.values()) == len(expected)  # each seed once


@pytest.mark.kafka
def test_push_with_nothing_valid_exits_1(kafka_bootstrap: str, unique_topic, tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no answer"}\nnot json\n')
    result = invoke("push", str(bad), "--bootstrap", kafka_bootstrap, env={"LINKSYN_BUS__TOPICS__SEEDS": unique_topic("seeds")})
    assert result.exit_code == 1
    assert "nothing was pushed" in result.output
    assert f"{bad}:1: missing 'answer'" in result.output and f"{bad}:2: invalid JSON" in result.output


# ---- status (a real gRPC server from the runtime) ---------------------------------------------------------------


@pytest.fixture
def stats_server():
    """A gRPC server built by the service runtime, serving ExtractorService.Stats. The service name is fresh per
    test: the Prometheus registry (where Stats reads its counters) is process-wide."""
    import uuid

    from linksyn.common.config import ServerConfig
    from linksyn.common.runtime.grpc_server import build_grpc_server
    from linksyn.common.runtime.metrics import ConsumerMetrics
    from linksyn.common.runtime.parts import ServiceParts
    from linksyn.common.runtime.stats import RuntimeStats
    from linksyn.v1 import extractor_pb2_grpc

    service = f"statustest{uuid.uuid4().hex[:8]}"

    class Servicer(RuntimeStats, extractor_pb2_grpc.ExtractorServiceServicer):
        stats_service = service

    from linksyn.common.spend import metrics as spend_metrics

    metrics = ConsumerMetrics(service)
    metrics.records_in("linksyn.seeds").inc(7)
    metrics.records_out("linksyn.seed-kps").inc(6)
    metrics.lag("linksyn.seeds").set(14)
    spend_metrics.TOKENS.labels(service, "openai:m", "prompt").inc(500)
    spend_metrics.TOKENS.labels(service, "openai:m", "completion").inc(100)
    spend_metrics.COST.labels(service, "openai:m").inc(0.25)
    spend_metrics.BUDGET_LEFT.labels(service, "run", "cost").set(1.5)
    servers = []

    def start(token: str | None = None) -> tuple[str, str]:
        parts = ServiceParts(
            name=service,
            servicers=[(extractor_pb2_grpc.add_ExtractorServiceServicer_to_server, Servicer())],
            service_names=["linksyn.v1.ExtractorService"],
        )
        server, port = build_grpc_server(parts, ServerConfig(host="127.0.0.1", grpc_port=0, grpc_token=token))
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", service

    yield start
    for s in servers:
        s.stop(grace=None)


def test_status_shows_service_health_uptime_and_counters(stats_server):
    target, service = stats_server()
    result = invoke("status", "--target", target)
    assert result.exit_code == 0, result.output
    [header, row] = result.output.strip().splitlines()
    assert header.split() == ["TARGET", "SERVICE", "HEALTH", "UPTIME", "COUNTERS"]
    cells = row.split()
    assert cells[:3] == [target, service, "SERVING"]
    assert "in=7" in cells and "out=6" in cells and "lag=14" in cells
    assert "tokens=600" in cells and "cost=0.2500" in cells and "budget_left=1.5000" in cells
    assert any(c.startswith("tok/s=") for c in cells) and any(c.startswith("eta=") for c in cells)


def test_status_progress_is_rates_since_start_and_the_lag_at_that_rate():
    from linksyn.cli import progress

    counters = {"consumer_records_in_total{topic=a}": 30, "consumer_lag_records{topic=a}": 90,
                "llm_tokens_total{kind=prompt,model=m}": 600}
    assert progress(counters, 60.0) == {"records_per_s": 0.5, "tokens_per_s": 10.0, "eta_s": 180.0}
    assert "eta_s" not in progress({"consumer_lag_records{topic=a}": 9}, 60.0)  # nothing read yet: no rate


def test_status_json_and_token(stats_server):
    target, _ = stats_server(token="s3cret")
    refused = invoke("status", "--target", target, "--json")
    [row] = json.loads(refused.stdout)
    assert row["health"] == "SERVING"  # health stays open without the token
    assert "UNAUTHENTICATED" in row["error"] and row["counters"] == {}
    allowed = invoke("status", "--target", target, "--json", "--token", "s3cret")
    [row] = json.loads(allowed.stdout)
    assert allowed.exit_code == 0
    assert row["grpc_service"] == "linksyn.v1.ExtractorService"
    assert row["counters"]["consumer_records_in_total{topic=linksyn.seeds}"] == 7


def test_status_unreachable_target_exits_1():
    from tests.tooling.ports import free_loopback_port

    target = f"127.0.0.1:{free_loopback_port()}"
    result = invoke("status", "--target", target, "--timeout", "1")
    assert result.exit_code == 1
    assert target in result.output and "UNREACHABLE" in result.output


# ---- serve as a process (real Kafka, real gRPC) -----------------------------------------------------------------


@pytest.mark.kafka
def test_serve_graph_process_answers_status_and_stops_cleanly_on_sigterm(kafka_bootstrap: str, unique_topic, tmp_path: Path):
    import os
    import signal
    import subprocess

    from tests.tooling.ports import free_loopback_port

    grpc_port, metrics_port = free_loopback_port(), free_loopback_port()
    env = {
        **os.environ,
        "LINKSYN_BUS__KAFKA__BOOTSTRAP": kafka_bootstrap,
        "LINKSYN_BUS__KAFKA__SESSION_TIMEOUT_MS": "6000",
        "LINKSYN_BUS__KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
        "LINKSYN_BUS__KAFKA__MAX_POLL_INTERVAL_MS": "10000",
        "LINKSYN_BUS__TOPICS__SEED_KPS": unique_topic("seed-kps"),
        "LINKSYN_BUS__TOPICS__DEAD_LETTER": unique_topic("dead-letter"),
        "LINKSYN_BUS__TOPICS__PARTITIONS": "2",
        "LINKSYN_SERVER__HOST": "127.0.0.1",
        "LINKSYN_SERVER__GRPC_PORT": str(grpc_port),
        "LINKSYN_SERVER__METRICS_PORT": str(metrics_port),
        "LINKSYN_GRAPH__SNAPSHOT_URL": str(tmp_path / "graph"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "linksyn.cli", "serve", "graph"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        target = f"127.0.0.1:{grpc_port}"
        deadline = time.monotonic() + 60
        while True:
            result = invoke("status", "--target", target, "--timeout", "2")
            if result.exit_code == 0 or time.monotonic() > deadline or proc.poll() is not None:
                break
            time.sleep(0.5)
        assert result.exit_code == 0, result.output
        row = result.output.strip().splitlines()[1].split()
        assert row[:3] == [target, "graph", "SERVING"]
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, output
        assert "linksyn graph stopped (exit code 0)" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
