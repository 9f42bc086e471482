"""What a StartRun or Probe request can make the trainer do (issue 21): its text never reaches a shell, it may only
name configured models and paths under allowed roots, nothing is downloaded unless allowed, long work runs in the
background, and a trainer that launches Jobs refuses to serve without the gRPC token."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import grpc
import kubernetes_validate
import pytest
from linksyn.common.bus import InMemoryBus
from linksyn.common.config import ServerConfig
from linksyn.common.runtime.grpc_server import build_grpc_server
from linksyn.config import LinksynConfig
from linksyn.registry import build_service
from linksyn.trainer.config import JobConfig, TrainerConfig
from linksyn.trainer.launcher import job_manifest
from linksyn.trainer.runs import RunController
from linksyn.v1 import trainer_pb2, trainer_pb2_grpc
from typer.testing import CliRunner

from tests.hostile_inputs import SHELL_DATA
from tests.trainer.conftest import wait_for


def test_a_request_text_never_reaches_a_shell() -> None:
    data = f"/var/lib/linksyn/{SHELL_DATA} $(LINKSYN_SERVER__GRPC_TOKEN)"
    m = job_manifest("r1", JobConfig(nodes=2, labels={"app.kubernetes.io/instance": "rel"}), "embedded", data,
                     "/var/lib/linksyn/runs/r1", 10)
    kubernetes_validate.validate(m, "1.35.0", strict=True)
    pod = m["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["command"] == ["torchrun"]  # no /bin/sh -c
    # The text is one argument, its '$' doubled so Kubernetes does not expand $(VAR) in it.
    assert c["args"][c["args"].index("--data") + 1] == data.replace("$", "$$")
    rank = {e["name"]: e for e in c["env"]}["PET_NODE_RANK"]
    assert rank["valueFrom"]["fieldRef"]["fieldPath"].endswith("['batch.kubernetes.io/job-completion-index']")
    # Hardened like the chart's pods, and labelled for the release's NetworkPolicy.
    assert pod["automountServiceAccountToken"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert m["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"


class FakeLauncher:
    """Records launches; `launch` blocks until `release` is set (an API server that is slow to answer)."""

    def __init__(self) -> None:
        self.launched: list[tuple[str, ...]] = []
        self.release = threading.Event()

    def launch(self, run_id: str, model: str, data: str, out_dir: str, max_steps: int) -> str:
        self.release.wait(30)
        self.launched.append((run_id, model, data))
        return run_id

    def status(self, run_id: str) -> str:
        return "running"


def _k8s_cfg(tmp_path: Path, **kw: Any) -> TrainerConfig:
    return TrainerConfig(launcher="kubernetes", dataset="/var/lib/linksyn/dataset", out_dir="/var/lib/linksyn/runs",
                         **kw)


@pytest.mark.parametrize("data", [
    SHELL_DATA,
    "/etc/passwd",
    "/var/lib/linksyn/dataset/../../../etc",
    "-rf",
    "/var/lib/linksyn/dataset\n--model",
])
def test_start_refuses_data_outside_the_allowed_roots_before_launching(tmp_path: Path, data: str) -> None:
    launcher = FakeLauncher()
    launcher.release.set()
    ctrl = RunController(_k8s_cfg(tmp_path), launcher=launcher)
    with pytest.raises(ValueError, match="data|control characters|starts with"):
        ctrl.start(data=data)
    assert launcher.launched == [] and ctrl.runs == {}


@pytest.mark.parametrize("model", ["hf:attacker/model", "hf:/etc", "vllm:x", "openai:http://10.0.0.1/v1#m"])
def test_start_refuses_models_that_are_not_configured(tmp_path: Path, model: str) -> None:
    ctrl = RunController(_k8s_cfg(tmp_path), launcher=FakeLauncher())
    with pytest.raises(ValueError, match="not allowed"):
        ctrl.start(model=model)


def test_allowed_models_and_checkpoints_under_a_root_are_accepted(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    launcher.release.set()
    cfg = _k8s_cfg(tmp_path, allowed_models=["hf:Qwen/Qwen2.5-0.5B"], allowed_roots=["s3://corpora/qa"])
    ctrl = RunController(cfg, launcher=launcher)
    for model, data in [("hf:Qwen/Qwen2.5-0.5B", "/var/lib/linksyn/dataset/part-1"),
                        ("hf:/var/lib/linksyn/runs/abc/final", "s3://corpora/qa/2026/shard-1"),
                        ("", "")]:
        info = ctrl.start(model=model, data=data)
        wait_for(lambda: info.state == "running", timeout=30)
    assert [m for _, m, _ in launcher.launched] == ["hf:Qwen/Qwen2.5-0.5B", "hf:/var/lib/linksyn/runs/abc/final",
                                                    "embedded"]
    with pytest.raises(ValueError):
        ctrl.start(data="s3://corpora/qa/../secrets")


def test_a_symlink_cannot_lead_an_in_process_run_out_of_its_roots(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "escape").symlink_to("/etc")
    ctrl = RunController(TrainerConfig(dataset=str(dataset), out_dir=str(tmp_path / "runs")))
    with pytest.raises(ValueError, match="not under an allowed root"):
        ctrl.start(data=str(dataset / "escape"))


def test_start_returns_at_once_while_the_job_is_being_created(tmp_path: Path) -> None:
    launcher = FakeLauncher()  # blocks until released
    ctrl = RunController(_k8s_cfg(tmp_path), launcher=launcher)
    info = ctrl.start(max_steps=5)
    assert info.state == "pending" and launcher.launched == []
    launcher.release.set()
    wait_for(lambda: ctrl.status(info.run_id).state == "running", timeout=30)
    assert launcher.launched[0][0] == info.run_id


class HubRecorder(BaseHTTPRequestHandler):
    """A stand-in Hugging Face Hub (HF_ENDPOINT): records every request, answers 404."""

    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        HubRecorder.paths.append(self.path)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubRecorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    HubRecorder.paths = []
    import huggingface_hub.constants as hf_constants

    endpoint = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(hf_constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    try:
        yield HubRecorder.paths
    finally:
        server.shutdown()
        server.server_close()


def _asked_for(paths: list[str], name: str) -> list[str]:
    return [p for p in paths if name in p]


def test_training_never_downloads_a_hub_model_unless_allowed(hub: list[str]) -> None:
    from linksyn.common.llm.spec import ModelSpecError
    from linksyn.trainer.train import load_trainable

    with pytest.raises(ModelSpecError, match="local HF cache unless trainer.allow_download"):
        load_trainable("hf:someone/not-cached-model")
    assert _asked_for(hub, "not-cached-model") == []  # the hub was never asked for it
    with pytest.raises(Exception):
        load_trainable("hf:someone/not-cached-model", allow_download=True)
    assert _asked_for(hub, "not-cached-model")  # with the switch on it is


def test_the_vllm_backend_never_downloads_a_hub_model_unless_allowed(hub: list[str]) -> None:
    from linksyn.common.llm.spec import ModelSpecError, resolve_vllm_model

    with pytest.raises(ModelSpecError, match="llm.allow_download is off"):
        resolve_vllm_model("someone/not-cached-model", "vllm:someone/not-cached-model", allow_download=False)
    assert _asked_for(hub, "not-cached-model") == []
    assert resolve_vllm_model("someone/not-cached-model", "vllm:x", allow_download=True) == "someone/not-cached-model"


def test_grpc_start_run_refuses_the_shell_payload_and_launches_nothing(tmp_path: Path) -> None:
    cfg = LinksynConfig.model_validate({"trainer": {"launcher": "kubernetes", "dataset": "/var/lib/linksyn/dataset",
                                                    "out_dir": "/var/lib/linksyn/runs"}})
    parts = build_service("trainer", cfg, InMemoryBus())
    launcher = FakeLauncher()
    launcher.release.set()
    parts.stage.controller.launcher = launcher
    server, port = build_grpc_server(parts, ServerConfig(host="127.0.0.1", grpc_port=0))
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = trainer_pb2_grpc.TrainerServiceStub(ch)
            with pytest.raises(grpc.RpcError) as e:
                stub.StartRun(trainer_pb2.StartRunRequest(data=SHELL_DATA), timeout=30)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.RpcError) as e:
                stub.Probe(trainer_pb2.ProbeRequest(checkpoint="hf:someone/model", benchmarks=["mmlu:/etc"]),
                           timeout=30)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        server.stop(0)
        parts.close()
    assert launcher.launched == []


def test_serving_a_trainer_that_launches_jobs_needs_the_grpc_token(tmp_path: Path) -> None:
    from linksyn.cli import app

    cfg = tmp_path / "trainer.yaml"
    cfg.write_text("bus: {kind: memory}\ntrainer: {launcher: kubernetes}\nserver: {grpc_port: 0, metrics_port: 0}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKSYN_")}
    result = CliRunner().invoke(app, ["serve", "trainer", "--config", str(cfg)], env=env)
    assert result.exit_code == 2, result.output
    assert "server.grpc_token" in result.output and "kubernetes" in result.output

