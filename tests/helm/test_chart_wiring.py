"""What the chart wires between its own parts, found missing when it first ran (tests/deploy): state on the
StatefulSets' volumes (the root filesystem is read-only, so a relative default path cannot be written), the sampler
streaming snapshots from the graph Service, and per-service container ports (pods that share a network)."""

from __future__ import annotations

import yaml

from tests.helm.test_chart import CHART, render, workloads  # noqa: F401 - the helm fixture comes with it
from tests.helm.test_chart import helm  # noqa: F401

PODMAN_VALUES = CHART / "ci" / "podman-values.yaml"


def config_of(docs: list[dict]) -> dict:
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-config"))
    return yaml.safe_load(cm["data"]["config.yaml"])


def sink_section(cfg: dict) -> dict:
    """The sink's settings: a top-level `sink` section, or `synth.sink` in older layouts."""
    return cfg.get("sink") or cfg.get("synth", {}).get("sink") or {}


def test_state_lives_on_the_volumes_and_the_sampler_reads_the_graph_service(helm: str) -> None:
    docs = render(helm)
    cfg = config_of(docs)
    w = workloads(docs)
    mounts = {name: {m["name"]: m["mountPath"] for m in d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
              for name, d in w.items()}
    assert cfg["graph"]["snapshot_url"].startswith(mounts["graph"]["data"] + "/")
    assert cfg["sampler"]["state_path"].startswith(mounts["sampler"]["data"] + "/")
    assert sink_section(cfg)["output_dir"].startswith(mounts["sink"]["data"] + "/")
    graph_svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "t-linksyn-graph")
    grpc = next(p["port"] for p in graph_svc["spec"]["ports"] if p["name"] == "grpc")
    assert cfg["sampler"]["graph_target"] == f"t-linksyn-graph:{grpc}"


def test_without_volumes_no_state_path_is_invented(helm: str) -> None:
    docs = render(helm, "--set", "services.graph.storage.size=", "--set", "services.sink.storage.size=",
                  "--set", "services.sampler.storage.size=")
    cfg = config_of(docs)
    assert "snapshot_url" not in cfg.get("graph", {})
    assert "state_path" not in cfg["sampler"]
    assert "output_dir" not in sink_section(cfg)
    for d in workloads(docs).values():
        assert "volumeClaimTemplates" not in d["spec"]


def test_values_config_overrides_what_the_chart_derives(helm: str) -> None:
    docs = render(helm, "--set", "config.sampler.graph_target=graph.example:1234")
    assert config_of(docs)["sampler"]["graph_target"] == "graph.example:1234"


def test_per_service_ports_reach_probes_env_and_container_ports(helm: str) -> None:
    docs = render(helm, "--set-json", 'services.graph.ports={"grpc":6001,"metrics":6002}')
    w = workloads(docs)
    for name, d in w.items():
        c = d["spec"]["template"]["spec"]["containers"][0]
        want = (6001, 6002) if name == "graph" else (50051, 9100)
        assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": want[0], "metrics": want[1]}
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert (env["LINKSYN_SERVER__GRPC_PORT"], env["LINKSYN_SERVER__METRICS_PORT"]) == tuple(map(str, want))
        assert [e["name"] for e in c["env"]].count("LINKSYN_SERVER__GRPC_PORT") == 1
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] == want[0], (name, probe)
    # Services keep the release-wide ports and reach the pods by port name; so does the NetworkPolicy
    svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "t-linksyn-graph")
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        "grpc": (50051, "grpc"), "metrics": (9100, "metrics")}
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == ["grpc", "metrics"]


def test_podman_values_render_and_lint(helm: str) -> None:
    import subprocess

    out = subprocess.run([helm, "lint", "--strict", str(CHART), "-f", str(PODMAN_VALUES)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    docs = render(helm, "-f", str(PODMAN_VALUES))
    assert config_of(docs)["extractor"]["mode"] == "keyphrase"
    assert any(d["kind"] == "ServiceMonitor" for d in docs)


def test_the_configmap_is_a_valid_linksyn_config(helm: str, tmp_path) -> None:
    """Every key the ConfigMap renders is one linksyn knows (a misspelt or moved key fails at pod start)."""
    from linksyn.config import load_config

    for args in ([], ["-f", str(PODMAN_VALUES)], ["-f", str(CHART / "ci" / "gpu-values.yaml")]):
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config_of(render(helm, *args))))
        load_config(path)


def test_sink_index_on_each_pods_volume_and_several_replicas_need_shared_state(helm: str) -> None:
    import subprocess

    from tests.helm.test_chart import CHART

    cfg = config_of(render(helm))
    w = workloads(render(helm))
    data = {m["name"]: m["mountPath"] for m in w["sink"]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert sink_section(cfg)["index_dir"].startswith(data["data"] + "/")
    out = subprocess.run([helm, "template", "t", str(CHART), "--set", "services.sink.replicas=3"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0 and "services.sink.replicas > 1 needs config.sink.output_dir" in out.stderr
    docs = render(helm, "--set", "services.sink.replicas=3", "--set", "config.sink.output_dir=s3://bucket/qa")
    assert sink_section(config_of(docs))["output_dir"] == "s3://bucket/qa"
    assert workloads(docs)["sink"]["spec"]["replicas"] == 3


def test_near_dups_job(helm: str) -> None:
    import subprocess

    from tests.helm.test_chart import CHART

    assert not [d for d in render(helm) if d["kind"] == "Job"]  # off by default
    out = subprocess.run([helm, "template", "t", str(CHART), "--set", "nearDups.enabled=true"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0 and "nearDups.out" in out.stderr
    docs = render(helm, "--set", "nearDups.enabled=true", "--set", "nearDups.out=s3://bucket/qa-global",
                  "--set", "nearDups.dataset=s3://bucket/qa", "--set", "nearDups.tasks=16")
    [job] = [d for d in docs if d["kind"] == "Job"]
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][:6] == ["near-dups", "--out", "s3://bucket/qa-global", "--tasks", "16", "--work"]
    assert c["args"][-2:] == ["--dataset", "s3://bucket/qa"]
    assert {"name": "LINKSYN_CONFIG", "value": "/etc/linksyn/config.yaml"} in c["env"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    work = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "work")
    assert work["emptyDir"]["sizeLimit"] == "100Gi"
