"""End-to-end observability: the services as OS processes (`linksyn serve ...`) on a real Kafka-protocol broker,
a real Prometheus (Debian's binary, from scripts/install_prometheus.sh) scraping their /metrics on loopback, seeds
pushed with `linksyn push`; Prometheus' HTTP API shows the pipeline metrics moving, and every query of the Grafana
dashboard is valid PromQL that Prometheus evaluates against those series."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.tooling.ports import free_loopback_port
from tests.tooling.tansu import TansuBroker

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / ".tools" / "bin" / "prometheus"
DASHBOARD = ROOT / "helm" / "linksyn" / "dashboards" / "linksyn.json"
SERVICES = ("extractor", "graph", "sampler", "synth", "sink")

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


@pytest.fixture(scope="module")
def prometheus_bin() -> Path:
    if not PROMETHEUS.exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "install_prometheus.sh")], check=True, timeout=600)
    return PROMETHEUS


def query(base: str, expr: str) -> dict:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # Prometheus answers 400 with a JSON error for bad PromQL
        return json.load(e)


def scalar(base: str, expr: str) -> float:
    res = query(base, expr)
    assert res["status"] == "success", (expr, res)
    values = res["data"]["result"]
    return float(values[0]["value"][1]) if values else 0.0


def wait_until(pred, timeout: float, what: str, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_prometheus_scrapes_the_pipeline_and_the_dashboard_queries_evaluate(tmp_path: Path, prometheus_bin: Path):
    linksyn = str(Path(sys.executable).with_name("linksyn"))
    with TansuBroker() as broker:
        config = {
            "bus": {"kind": "kafka", "kafka": {"bootstrap": broker.bootstrap, "session_timeout_ms": 6000,
                                               "heartbeat_interval_ms": 1000, "max_poll_interval_ms": 600000},
                    "topics": {"partitions": 2}},
            "runtime": {"batch_size": 8, "batch_wait_s": 0.2},
            "extractor": {"mode": "keyphrase"},
            "graph": {"snapshot_url": str(tmp_path / "graph"), "snapshot_every_s": 2, "snapshot_every_seeds": 10},
            "sampler": {"snapshot_store": str(tmp_path / "graph"), "refresh_s": 2, "lag_target": 4,
                        "state_path": str(tmp_path / "sampler" / "state.json")},
            "synth": {"max_tokens": 160},
            "sink": {"output_dir": str(tmp_path / "dataset"), "flush_interval_s": 2,
                     "state_dir": str(tmp_path / "sink-state")},
        }
        cfg_path = tmp_path / "linksyn.yaml"
        cfg_path.write_text(yaml.safe_dump(config))
        ports = {s: (free_loopback_port(), free_loopback_port()) for s in SERVICES}
        procs: dict[str, subprocess.Popen] = {}
        logs = {}
        try:
            for name, (grpc_port, metrics_port) in ports.items():
                env = {**os.environ, "LINKSYN_CONFIG": str(cfg_path), "LINKSYN_SERVER__HOST": "127.0.0.1",
                       "LINKSYN_SERVER__GRPC_PORT": str(grpc_port), "LINKSYN_SERVER__METRICS_PORT": str(metrics_port)}
                logs[name] = (tmp_path / f"{name}.log").open("w")
                procs[name] = subprocess.Popen([linksyn, "serve", name], env=env, stdout=logs[name],
                                               stderr=subprocess.STDOUT, cwd=tmp_path)
            prom_port = free_loopback_port()
            (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [{"job_name": "linksyn", "static_configs": [
                    {"targets": [f"127.0.0.1:{m}" for _, m in ports.values()]}]}],
            }))
            prom = subprocess.Popen(
                [str(prometheus_bin), f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"))
            procs["prometheus"] = prom
            base = f"http://127.0.0.1:{prom_port}"

            def all_up() -> bool:
                for name, p in procs.items():
                    assert p.poll() is None, f"{name} exited {p.returncode}: {(tmp_path / f'{name}.log').read_text()[-3000:] if name in logs else ''}"
                try:
                    return scalar(base, 'count(up{job="linksyn"} == 1)') == len(SERVICES)
                except OSError:
                    return False

            wait_until(all_up, 240, "every service to be up and scraped")
            before = scalar(base, 'sum(linksyn_consumer_records_in_total{service="extractor"})')
            assert before == 0  # nothing flowed yet: the counters below move because of the push
            pushed = subprocess.run([linksyn, "push", str(ROOT / "examples" / "seeds.jsonl"), "--bootstrap",
                                     broker.bootstrap], capture_output=True, text=True, timeout=120)
            assert pushed.returncode == 0, pushed.stderr
            n_seeds = sum(1 for line in (ROOT / "examples" / "seeds.jsonl").read_text().splitlines() if line.strip())

            # The counters move while seeds flow, stage by stage.
            wait_until(lambda: scalar(base, 'sum(linksyn_consumer_records_in_total{service="extractor"})') >= n_seeds,
                       300, "the extractor to read every pushed seed")
            wait_until(lambda: scalar(base, "sum(linksyn_graph_seeds_ingested_total)") > 0, 180,
                       "the graph to ingest annotated seeds")
            wait_until(lambda: scalar(base, "max(linksyn_graph_kps)") > 0, 60, "graph size gauges")
            wait_until(lambda: scalar(base, "sum(linksyn_sampler_paths_emitted_total)") > 0, 180,
                       "the sampler to emit paths")
            wait_until(lambda: scalar(base, 'sum(linksyn_consumer_records_in_total{service="synth"})') > 0, 180,
                       "synth to consume paths")
            assert scalar(base, 'sum(linksyn_consumer_records_in_total{service="graph"})') > 0
            assert scalar(base, 'sum(linksyn_consumer_records_out_total{service="extractor"})') > 0

            # Every dashboard query is valid PromQL that evaluates against these series.
            dash = json.loads(DASHBOARD.read_text())
            exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
            failures = {e: r for e in exprs if (r := query(base, e))["status"] != "success"}
            assert not failures, failures
            with_data = [e for e in exprs if query(base, e)["data"]["result"]]
            for must in ("sum by (service) (rate(linksyn_consumer_records_in_total[1m]))",
                         "sum by (topic, service) (linksyn_consumer_lag_records)",
                         "max(linksyn_graph_kps)", "max(linksyn_sampler_kp_coverage_ratio)"):
                assert must in with_data, (must, with_data)
            # A malformed query is refused, so the check above can fail.
            assert query(base, "sum by (service (rate(x[1m]))")["status"] == "error"
        finally:
            for name, p in procs.items():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for name, p in procs.items():
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            for f in logs.values():
                f.close()
        for name in SERVICES:
            assert procs[name].returncode == 0, (name, (tmp_path / f"{name}.log").read_text()[-3000:])
