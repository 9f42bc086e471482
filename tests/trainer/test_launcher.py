from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import kubernetes_validate

from linksyn.trainer.config import JobConfig
from linksyn.trainer.launcher import KubernetesLauncher, job_manifest, job_name


def test_job_manifest_is_valid_kubernetes() -> None:
    cfg = JobConfig(namespace="ml", nodes=2, gpus_per_pod=8, data_pvc="linksyn-data", service_account="trainer")
    m = job_manifest("Run_2026/11", cfg, "hf:/var/lib/linksyn/models/base", "/var/lib/linksyn/dataset",
                     "/var/lib/linksyn/runs", 1000, config_map="linksyn-config")
    kubernetes_validate.validate(m, "1.35.0", strict=True)
    pod = m["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"] == {"nvidia.com/gpu": "8"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert m["spec"]["completionMode"] == "Indexed" and m["spec"]["completions"] == 2
    assert c["command"] == ["torchrun"] and "--nproc-per-node=8" in c["args"] and "--nnodes=2" in c["args"]
    assert m["metadata"]["name"] == job_name("Run_2026/11") == "linksyn-train-run-2026-11"
    cpu_only = job_manifest("r", JobConfig(gpus_per_pod=0), "embedded", "/d", "/o", 1)
    kubernetes_validate.validate(cpu_only, "1.35.0", strict=True)
    assert "limits" not in cpu_only["spec"]["template"]["spec"]["containers"][0]["resources"]


class RecordingAPIServer(BaseHTTPRequestHandler):
    """A loopback HTTP server standing in for the API server: records what the real kubernetes client sends."""

    requests: list[tuple[str, str, dict]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        RecordingAPIServer.requests.append(("POST", self.path, body))
        self._reply(201, body)

    def do_GET(self) -> None:  # noqa: N802
        RecordingAPIServer.requests.append(("GET", self.path, {}))
        self._reply(200, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
                          "status": {"active": 1}})

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_launcher_sends_the_manifest_through_the_real_client() -> None:
    from kubernetes import client

    RecordingAPIServer.requests = []  # tests/helm/test_chart.py records through this class too
    server = HTTPServer(("127.0.0.1", 0), RecordingAPIServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conf = client.Configuration()
        conf.host = f"http://127.0.0.1:{server.server_port}"
        api = client.ApiClient(conf)
        cfg = JobConfig(namespace="ml", nodes=2)
        launcher = KubernetesLauncher(cfg, client.BatchV1Api(api), client.CoreV1Api(api))
        name = launcher.launch("r1", "embedded", "/data", "/out", 50)
        assert launcher.status("r1") == "running"
    finally:
        server.shutdown()
    posts = [(p, b) for m, p, b in RecordingAPIServer.requests if m == "POST"]
    assert [p for p, _ in posts] == ["/api/v1/namespaces/ml/services", "/apis/batch/v1/namespaces/ml/jobs"]
    sent_job = posts[1][1]
    assert sent_job["metadata"]["name"] == name
    kubernetes_validate.validate(sent_job, "1.35.0", strict=True)
    assert ("GET", f"/apis/batch/v1/namespaces/ml/jobs/{name}/status", {}) in RecordingAPIServer.requests
