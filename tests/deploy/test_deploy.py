"""The deployment, run for real: the image built from the Dockerfile with podman, the chart rendered with helm and
helm/linksyn/ci/podman-values.yaml, every workload played with `podman kube play` (tests/deploy/play.py, the code
behind scripts/local-chart.sh), a broker whose records survive its own kill -9 (Tansu on S3, tests/deploy/broker.py).

What is checked, on the pods as the chart renders them (read-only root filesystem, user 10001, the chart's
ConfigMap, env, args, volumes):
- the image: built (cached by a hash of its inputs), non-root, no compilers, `linksyn` runs on a read-only root;
- every probe the chart declares passes (podman 4.3 does not run gRPC probes: they are run here, as the kubelet
  would, against the port each probe names);
- Prometheus scrapes every pod through the port and path the chart's ServiceMonitor and Service declare;
- seeds pushed with `linksyn push` reach a dataset that the sink container writes on its volume, while the extractor
  and the synth get a rolling restart mid-stream and the broker is killed with -9 and restarted: seeds in =
  annotated + dead-lettered, every kept QA exactly once (tests/system/cluster.py's ledger);
- `linksyn status` sees every service SERVING at the end.

What the play cannot model (scheduling, node pools, GPUs, KEDA, NetworkPolicy, PodDisruptionBudgets, Service DNS,
ServiceMonitor discovery) is covered by the render tests in tests/helm.

Where podman, runc or debootstrap cannot be installed these tests fail, also locally: a skipped deployment test
would hide a broken deployment. `-m "not deploy"` leaves them out on purpose.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.play import (
    ROOT,
    SERVICES,
    LocalChart,
    container_of,
    ensure_image,
    podman,
)
from tests.system.cluster import SEEDS_FILE, Cluster, ServiceProcess, check_ledger, read_ledger, seed_waves, sink_dataset

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.kafka]

MAX_PATHS = 10
PROMETHEUS = ROOT / ".tools" / "bin" / "prometheus"


@pytest.fixture(scope="module")
def tools() -> None:
    """podman + runc + debootstrap (apt-get), the S3 server, helm, Prometheus: installed if absent, or a failure."""
    for script in ("install_podman.sh", "install_prometheus.sh"):
        proc = subprocess.run(["bash", str(ROOT / "scripts" / script)], capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, f"scripts/{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def image(tools: None, tmp_path_factory: pytest.TempPathFactory):
    t0 = time.monotonic()
    info = ensure_image(tmp_path_factory.mktemp("build") / "build.log")
    print(f"\nimage {info.name}: {info.size_bytes / 1e6:.0f} MB, built now: {info.built} "
          f"(build {info.build_s:.0f} s, base image {info.base_s:.0f} s, total {time.monotonic() - t0:.0f} s)")
    return info


@pytest.mark.timeout(3600)
def test_image_is_non_root_has_no_compilers_and_runs_read_only(image) -> None:
    cfg = json.loads(podman("image", "inspect", image.name).stdout)[0]["Config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["Entrypoint"] == ["linksyn"]
    found = podman("run", "--rm", "--network", "none", "--entrypoint", "sh", image.name, "-c",
                   "for c in gcc cc g++ c++ clang clang++ make ld as cpp rustc go; do command -v $c; done; true").stdout
    assert found.strip() == "", f"build tools in the final image: {found.split()}"
    # as the chart runs it: read-only root, a non-root user, /tmp writable, no capabilities
    out = podman("run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
                 "--security-opt", "no-new-privileges", image.name, "config", "show").stdout
    shown = yaml.safe_load(out)
    assert shown["bus"]["kind"] in ("memory", "kafka")
    whoami = podman("run", "--rm", "--network", "none", "--entrypoint", "id", image.name, "-u").stdout.strip()
    assert whoami == "10001"


# ---- the played chart ------------------------------------------------------------------------------------------


class PlayedCluster(Cluster):
    """tests/system/cluster.py's view of a cluster (topics, groups, `linksyn status`, dataset, sink state, ledger),
    over the played pods: the services are the pods' published gRPC ports; the dataset and the graph snapshots are
    read where the containers wrote them, on their volumes."""

    chart: LocalChart

    @classmethod
    def over(cls, chart: LocalChart, root: Path) -> "PlayedCluster":
        from linksyn.common.bus.kafka import KafkaBus
        from linksyn.common.config import KafkaConfig

        assert chart.broker is not None
        root.mkdir(parents=True, exist_ok=True)
        cm = next(d for d in chart.docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-config"))
        config = yaml.safe_load(cm["data"]["config.yaml"])
        config.setdefault("bus", {}).setdefault("kafka", {})["bootstrap"] = chart.broker.bootstrap
        config["bus"]["kind"] = "kafka"
        data = {s: chart.volume_path(f"data-{chart_name(s)}-0") for s in ("graph", "sampler", "sink")}
        config["graph"]["snapshot_url"] = remap(config["graph"]["snapshot_url"], data["graph"])
        config["sink"]["output_dir"] = remap(config["sink"]["output_dir"], data["sink"])
        config["sampler"]["state_path"] = remap(config["sampler"]["state_path"], data["sampler"])
        config_path = root / "linksyn.yaml"
        config_path.write_text(yaml.safe_dump(config))
        self = cls(root=root, llm_spec="embedded", max_paths=int(config["sampler"]["max_paths"]))
        self.chart = chart
        self.config, self.config_path = config, config_path
        self.services = {s: ServiceProcess(s, p.grpc, p.metrics, root / f"{s}.log") for s, p in chart.ports.items()}
        self.bus = KafkaBus(KafkaConfig(**config["bus"]["kafka"]), client_id="deploy-test")
        return self

    def sink_dir(self) -> Path:
        return Path(self.config["sink"]["output_dir"])

    def dataset(self) -> list[dict[str, Any]]:
        """Every row of the shards the sink's partition manifests list, read on the sink's volume."""
        return sink_dataset(str(self.sink_dir()))

    def sink_decisions(self) -> dict[str, list[int]]:
        """The sink's durable state on its volume: ids of every QA it decided on, and of those it kept."""
        from linksyn.sink.store import DatasetStore

        return DatasetStore(str(self.sink_dir())).decisions()

    def check_alive(self) -> None:
        for s in SERVICES:
            state = self.chart.container_state(s)
            if state and state.get("Status") == "exited" and not state.get("Restarting"):
                raise AssertionError(f"{s}'s container exited ({state.get('ExitCode')}):\n{self.chart.logs(s)}")

    def logs(self) -> str:
        return self.chart.all_logs()

    def close(self) -> None:
        if self.bus is not None:
            try:
                self.bus.close()
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
            self.bus = None


def chart_name(service: str) -> str:
    from tests.deploy.play import workload_name

    return workload_name(service)


def remap(path: str, volume: Path) -> str:
    """A path under the pod's data mount (linksyn.dataDir, /var/lib/linksyn) as the host sees it on the volume."""
    prefix = "/var/lib/linksyn/"
    assert path.startswith(prefix), f"{path} is not on the data volume"
    return str(volume / path[len(prefix):])


def check_probes(chart: LocalChart) -> dict[str, list[str]]:
    """Every probe of every container, run as the kubelet runs it: a gRPC health check (service "" unless the
    probe names one) on the port it names, or a TCP connect. Returns service -> the probes that passed."""
    import socket

    passed: dict[str, list[str]] = {}
    for s in SERVICES:
        c = container_of(chart.docs, s)
        declared = {p["name"]: p["containerPort"] for p in c["ports"]}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = c[kind]
            if "grpc" in probe:
                port = probe["grpc"]["port"]
                assert port == declared["grpc"] == chart.ports[s].grpc, (s, kind, port, declared)
                status = chart.health(s, timeout=float(probe.get("timeoutSeconds", 1)) + 2)
                assert status == "SERVING", f"{s}'s {kind} fails: {status}"
            else:
                port = probe["tcpSocket"]["port"]
                with socket.create_connection(("127.0.0.1", port), timeout=3):
                    pass
            passed.setdefault(s, []).append(kind)
    return passed


class Prometheus:
    """Debian's Prometheus scraping each pod at the port and path the chart declares for monitoring: the
    ServiceMonitor's endpoint names a Service port, the Service maps it to a container port by name."""

    def __init__(self, chart: LocalChart, root: Path) -> None:
        from tests.tooling.ports import free_loopback_port

        docs = chart.docs
        monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
        endpoint = monitor["spec"]["endpoints"][0]
        self.path = endpoint.get("path", "/metrics")
        targets = {}
        for s in SERVICES:
            svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == chart_name(s))
            assert all(svc["metadata"]["labels"].get(k) == v
                       for k, v in monitor["spec"]["selector"]["matchLabels"].items()), svc["metadata"]
            svc_port = next(p for p in svc["spec"]["ports"] if p["name"] == endpoint["port"])
            c = container_of(docs, s)
            cport = next(p["containerPort"] for p in c["ports"] if p["name"] == svc_port["targetPort"])
            targets[s] = f"127.0.0.1:{cport}"
        self.targets = targets
        self.port = free_loopback_port()
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "linksyn", "metrics_path": self.path, "static_configs": [
                {"targets": [t], "labels": {"component": s}} for s, t in targets.items()]}],
        }))
        self.proc = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=(root / "prometheus.log").open("w"))

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as r:
            res = json.load(r)
        assert res["status"] == "success", res
        return res["data"]["result"]

    def wait_all_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = {r["metric"]["component"]: r["value"][1] for r in self.query('up{job="linksyn"}')}
                if set(last) == set(SERVICES) and all(v == "1" for v in last.values()):
                    return
            except OSError as e:
                last = e
            time.sleep(1)
        raise AssertionError(f"Prometheus does not scrape every pod at {self.targets}{self.path}: {last}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.mark.timeout(3600)
def test_the_chart_played_end_to_end_through_restarts(image, tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    t_start = time.monotonic()
    chart = LocalChart(state_dir=tmp_path / "local-chart", sets={"config.sampler.max_paths": MAX_PATHS})
    prom: Prometheus | None = None
    cluster: PlayedCluster | None = None
    try:
        t0 = time.monotonic()
        chart.up()
        timings["up"] = round(time.monotonic() - t0, 1)
        assert chart.image is not None and chart.image.name == image.name

        # every pod as the chart says: read-only root, user 10001, the chart's args
        for s in SERVICES:
            inspect = json.loads(podman("inspect", "--type", "container", f"linksyn-{s}-pod-0-{s}").stdout)[0]
            assert inspect["HostConfig"]["ReadonlyRootfs"] is True, s
            assert inspect["Config"]["User"].split(":")[0] == "10001", s
            assert inspect["Config"]["Cmd"] == ["serve", s], s
        passed = check_probes(chart)
        assert all(len(v) == 3 for v in passed.values()), passed

        prom = Prometheus(chart, tmp_path / "prometheus")
        prom.wait_all_up()

        cluster = PlayedCluster.over(chart, tmp_path / "cluster")
        waves = seed_waves(tmp_path, 3)
        t0 = time.monotonic()
        pushed = cluster.push(waves[0])
        # rolling restart of the extractor while the first wave flows
        chart.replay("extractor")
        pushed += cluster.push(waves[1])
        chart.wait_serving(["extractor"])
        # rolling restart of the synth in the middle of synthesis
        cluster.wait(lambda: cluster.committed("synth") >= 1, 600, "the synth to finish a first path")
        assert cluster.committed("synth") < MAX_PATHS, "the synth finished before its restart: nothing mid-stream"
        chart.replay("synth")
        chart.wait_serving(["synth"])
        # kill -9 of the broker while paths are being synthesized, then a new broker on the same storage
        cluster.wait(lambda: cluster.committed("synth") >= 3, 600, "the restarted synth to go on")
        synth_before = cluster.committed("synth")
        assert synth_before < MAX_PATHS, "the synth finished before the broker kill: nothing mid-stream"
        assert chart.broker is not None
        chart.broker.kill9_broker()
        time.sleep(3)
        chart.broker.restart_broker()
        pushed += cluster.push(waves[2])
        cluster.wait_finished(timeout=900)
        timings["stream"] = round(time.monotonic() - t0, 1)

        # every service SERVING (the CLI), every probe passing, Prometheus still scraping the replaced pods
        rc, rows = cluster.status_cli()
        assert rc == 0 and {r["service"] for r in rows} == set(SERVICES), rows
        assert all(r["health"] == "SERVING" for r in rows), rows
        check_probes(chart)
        prom.wait_all_up(60)
        # Over the whole run: a sink pod restarted by podman after the broker's kill has no series of a labelled
        # counter until it reads a record, and by then everything may already be committed.
        sink_series = 'count by (__name__) ({component="sink"})'
        assert prom.query('sum(max_over_time(linksyn_consumer_records_in_total{component="sink"}[1h]))'), (
            f"no sink counters scraped; the sink's series: {[r['metric'] for r in prom.query(sink_series)]}")

        # the ledger: seeds in = annotated + dead-lettered, every kept QA exactly once, all traceable
        ledger = read_ledger(cluster, seed_ids(), {})
        check_ledger(ledger, cluster, {})
        assert pushed == len(ledger.seeds_in) == 42
        assert len(ledger.path_ids) == MAX_PATHS
        assert ledger.dataset, cluster.logs()
        # the dataset is where the sink container wrote it: on the sink's volume, as JSONL and Parquet shards
        out = cluster.sink_dir()
        assert out.is_relative_to(chart.volume_path("data-linksyn-sink-0"))
        assert list((out / "data" / "jsonl").glob("*.jsonl")) and list((out / "data" / "parquet").glob("*.parquet"))
        print(f"\ndeploy: dataset rows {len(ledger.dataset)}, dead letters {len(ledger.dead)}, "
              f"seed-kps records {ledger.annotated_records}, broker starts {chart.broker.starts}")
    finally:
        if cluster is not None:
            cluster.close()
        if prom is not None:
            prom.stop()
        t0 = time.monotonic()
        chart.down()
        timings["down"] = round(time.monotonic() - t0, 1)
        timings["total"] = round(time.monotonic() - t_start, 1)
        print(f"deploy timings (s): {timings}")
    # `down` left nothing behind
    assert podman("pod", "ps", "-q", "--filter", "name=^linksyn-").stdout.strip() == ""
    for v in chart.volumes:
        assert podman("volume", "exists", v, check=False).returncode != 0, v
    assert chart.broker is not None and chart.broker.tansu_pid is None and chart.broker.s3_pid is None


def seed_ids() -> set[str]:
    from linksyn.common.seeds import SeedReader

    return {s.id for s in SeedReader([SEEDS_FILE])}
