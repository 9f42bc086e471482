"""Security basics (DESIGN.md, "Security"): the bearer token on every method of every service, gRPC TLS on a real
service, the sampler authenticating to the graph, and no secret in logs, metrics, Stats, error details or
`linksyn config show` of a real service process.

Every service is its real `app.build` wiring behind the real gRPC server; the secrets test runs `linksyn serve` as
an OS process whose LLM is an OpenAI-compatible HTTP server on loopback that echoes the Authorization header back in
its error replies (the worst case: a server quoting the key)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from linksyn.common.bus import InMemoryBus
from linksyn.common.bus.base import Message
from linksyn.common.config import ServerConfig
from linksyn.common.runtime.grpc_server import build_grpc_server, grpc_channel
from linksyn.common.runtime.parts import ServiceParts
from linksyn.registry import build_service
from linksyn.v1 import common_pb2, extractor_pb2, extractor_pb2_grpc, records_pb2
from pydantic import SecretStr

from tests.common.llm.test_openai import ScriptedServer
from tests.common.runtime.certs import self_signed_cert
from tests.common.runtime.service_parts import (
    SERVICES,
    build_every_service,
    local_config,
)
from tests.graph.graph_fixtures import HAND_SEEDS, annotated
from tests.tooling.ports import free_loopback_port

pytestmark = pytest.mark.timeout(300)

TOKEN = "grpc-tok-5b2e91c4d7a8f063"
API_KEY = "sk-llm-key-0f9e8d7c6b5a4321"
SASL_PASSWORD = "sasl-pw-c0ffee-77aa31e9"


@pytest.fixture(scope="module")
def every_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceParts]]:
    yield from build_every_service(tmp_path_factory.mktemp("services"))


def _serve(parts: ServiceParts, **server: Any) -> Iterator[int]:
    srv, port = build_grpc_server(parts, ServerConfig(host="127.0.0.1", grpc_port=0, **server))
    srv.start()
    try:
        yield port
    finally:
        srv.stop(grace=None).wait()


def _methods(service_name: str) -> list[tuple[str, bool]]:
    """(full method path, server-streaming) of every method the service declares."""
    svc = descriptor_pool.Default().FindServiceByName(service_name)
    return [(f"/{service_name}/{m.name}", m.server_streaming) for m in svc.methods]


def _call_raw(channel: grpc.Channel, path: str, streaming: bool) -> None:
    """Call `path` with an empty request (bytes in, bytes out); raises grpc.RpcError on a non-OK status."""
    if streaming:
        for _ in channel.unary_stream(path)(b"", timeout=30):
            pass
    else:
        channel.unary_unary(path)(b"", timeout=30)


@pytest.mark.parametrize("service", SERVICES)
def test_every_method_of_every_service_refuses_a_missing_or_wrong_token(
    service: str, every_service: dict[str, ServiceParts]
) -> None:
    parts = every_service[service]
    for port in _serve(parts, grpc_token=SecretStr(TOKEN)):
        target = f"127.0.0.1:{port}"
        methods = [m for name in parts.service_names for m in _methods(name)]
        assert "Stats" in {p.rsplit("/", 1)[1] for p, _ in methods}, methods
        for token, reason in ((None, "missing bearer token"), ("not-" + TOKEN, "wrong bearer token")):
            with grpc_channel(target, token=token) as ch:
                for path, streaming in methods:
                    with pytest.raises(grpc.RpcError) as e:
                        _call_raw(ch, path, streaming)
                    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, (path, e.value.details())
                    assert reason in (e.value.details() or ""), path
        with grpc_channel(target) as ch:  # probes need no token
            check = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=30)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
        with grpc_channel(target, token=TOKEN) as ch:  # the right token reaches the servicer
            stats = ch.unary_unary(
                f"/{parts.service_names[0]}/Stats", common_pb2.StatsRequest.SerializeToString,
                common_pb2.StatsReply.FromString,
            )(common_pb2.StatsRequest(), timeout=30)
            assert stats.service == service


def test_a_real_service_over_tls_serves_tls_clients_and_refuses_plaintext(
    tmp_path: Path, every_service: dict[str, ServiceParts]
) -> None:
    cert, key = self_signed_cert(tmp_path)
    parts = every_service["graph"]
    stats_path = "/linksyn.v1.GraphService/Stats"
    for port in _serve(parts, tls_cert=cert, tls_key=key, grpc_token=SecretStr(TOKEN)):
        with grpc_channel(f"localhost:{port}", token=TOKEN, tls_ca=cert) as ch:
            reply = ch.unary_unary(stats_path, common_pb2.StatsRequest.SerializeToString,
                                   common_pb2.StatsReply.FromString)(common_pb2.StatsRequest(), timeout=30)
            assert reply.service == "graph"
        with grpc_channel(f"127.0.0.1:{port}", token=TOKEN) as plain:
            with pytest.raises(grpc.RpcError) as e:
                plain.unary_unary(stats_path)(b"", timeout=30)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        (tmp_path / "other").mkdir()
        other_cert, _ = self_signed_cert(tmp_path / "other")
        with grpc_channel(f"localhost:{port}", token=TOKEN, tls_ca=other_cert) as wrong_ca:
            with pytest.raises(grpc.RpcError) as e:  # a server certificate the client does not trust
                wrong_ca.unary_unary(stats_path)(b"", timeout=30)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_sampler_streams_snapshots_from_a_graph_that_requires_the_token(tmp_path: Path) -> None:
    cfg = local_config(tmp_path)
    cfg.server.grpc_token = SecretStr(TOKEN)
    graph = build_service("graph", cfg, InMemoryBus())
    msgs = [Message(cfg.bus.topics.seed_kps, 0, i, None, annotated(*s).SerializeToString())
            for i, s in enumerate(HAND_SEEDS)]
    graph.stage.process(msgs)
    graph.stage.close()  # publishes the snapshot the servicer serves
    for port in _serve(graph, grpc_token=SecretStr(TOKEN)):
        cfg.sampler.graph_target = f"127.0.0.1:{port}"
        sampler = build_service("sampler", cfg, InMemoryBus())
        service = sampler.servicers[0][1].live
        assert service.refresh() is True
        assert service.sampler.snapshot.n_seeds == len(HAND_SEEDS)
        cfg.server.grpc_token = SecretStr("not-" + TOKEN)  # a sampler holding the wrong token is refused
        refused = build_service("sampler", cfg, InMemoryBus()).servicers[0][1].live
        with pytest.raises(grpc.RpcError) as e:
            refused.refresh()
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


# ---- no secret in logs, metrics or config show, from a real `linksyn serve` process ----------------------------


class KeyEchoingLLM(ScriptedServer):
    """An OpenAI-compatible endpoint that refuses every request with 401, quoting the Authorization header."""

    def handle(self, h: Any, body: dict) -> None:
        self.reply(h, 401, {"error": {"message": f"invalid api key: {h.headers.get('Authorization')}"}})


def _fragments(secret: str) -> list[str]:
    """The secret and its middle: a cut-off quotation must not pass either."""
    return [secret, secret[len(secret) // 4 : len(secret) // 4 + 10]]


def test_no_secret_in_logs_metrics_or_config_show_of_a_real_service(tmp_path: Path) -> None:
    llm = KeyEchoingLLM()
    linksyn = str(Path(sys.executable).with_name("linksyn"))
    grpc_port, metrics_port = free_loopback_port(), free_loopback_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKSYN_")} | {
        "LINKSYN_BUS__KIND": "memory",
        "LINKSYN_BUS__KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "LINKSYN_BUS__KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
        "LINKSYN_BUS__KAFKA__SASL_USERNAME": "linksyn",
        "LINKSYN_BUS__KAFKA__SASL_PASSWORD": SASL_PASSWORD,
        "LINKSYN_SERVER__GRPC_TOKEN": TOKEN,
        "LINKSYN_SERVER__HOST": "127.0.0.1",
        "LINKSYN_SERVER__GRPC_PORT": str(grpc_port),
        "LINKSYN_SERVER__METRICS_PORT": str(metrics_port),
        "LINKSYN_EXTRACTOR__MODE": "llm",
        "LINKSYN_EXTRACTOR__MODEL": f"openai:{llm.url}#served-model",
        "LINKSYN_EXTRACTOR__KP_MERGE": "false",
        "LINKSYN_EXTRACTOR__LLM__RETRY__MAX_ATTEMPTS": "1",
        "OPENAI_API_KEY": API_KEY,
    }
    log_path = tmp_path / "serve.log"
    try:
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen([linksyn, "serve", "extractor"], env=env, stdout=log_file,
                                    stderr=subprocess.STDOUT)
            try:
                target = f"127.0.0.1:{grpc_port}"
                _wait_serving(target, proc)
                seed = records_pb2.Seed(id="q1", question="What is the boiling point of water?", answer="100 C")
                with grpc_channel(target, token=TOKEN) as ch:
                    stub = extractor_pb2_grpc.ExtractorServiceStub(ch)
                    with pytest.raises(grpc.RpcError) as e:  # the LLM refuses: the error reaches the caller
                        stub.Extract(extractor_pb2.ExtractRequest(seed=seed), timeout=120)
                    details = e.value.details() or ""
                    assert "401" in details, details
                    stats = ch.unary_unary("/linksyn.v1.ExtractorService/Stats")(b"", timeout=30).decode("latin-1")
                    assert "extractor" in stats
                for token in (None, "not-" + TOKEN):
                    with grpc_channel(target, token=token) as ch, pytest.raises(grpc.RpcError):
                        stats = ch.unary_unary("/linksyn.v1.ExtractorService/Stats")(b"", timeout=30).decode("latin-1")
                    assert "extractor" in stats
                assert llm.auth_headers == [f"Bearer {API_KEY}"]  # the key was really used
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30) as r:
                    metrics = r.read().decode()
                assert "linksyn_" in metrics
            finally:
                proc.send_signal(signal.SIGTERM)
                rc = proc.wait(timeout=120)
        logs = log_path.read_text(errors="replace")
        assert rc == 0, logs
        assert "refused gRPC call /linksyn.v1.ExtractorService/Stats: wrong bearer token" in logs  # INFO+ captured
        shown = subprocess.run([linksyn, "config", "show"], env=env, capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.count("**********") == 2  # sasl_password, grpc_token
        for secret in (TOKEN, API_KEY, SASL_PASSWORD):
            for fragment in _fragments(secret):
                for where, text in (("details", details), ("logs", logs), ("metrics", metrics), ("Stats", stats),
                                    ("config show", shown.stdout + shown.stderr)):
                    assert fragment not in text, f"{fragment!r} of a secret appears in the {where}"
    finally:
        llm.close()


def _wait_serving(target: str, proc: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"`linksyn serve` exited with {proc.returncode} before serving")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.3)
    pytest.fail(f"`linksyn serve` did not serve on {target} within {timeout_s:.0f} s")


def test_config_errors_never_quote_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt secret key, or a secret of the wrong type, is reported by name without its value."""
    from linksyn.config import ConfigError, load_config

    for k in [k for k in os.environ if k.startswith("LINKSYN_")]:
        monkeypatch.delenv(k)
    path = tmp_path / "linksyn.yaml"
    path.write_text(json.dumps({
        "server": {"grpc_tokn": TOKEN, "grpc_port": 70000},
        "bus": {"kafka": {"sasl_password": [SASL_PASSWORD], "sasl_passwd": SASL_PASSWORD}},
    }))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    text = str(e.value)
    assert "server.grpc_tokn: Extra inputs are not permitted (value not shown)" in text
    assert "bus.kafka.sasl_passwd: Extra inputs are not permitted (value not shown)" in text
    assert "bus.kafka.sasl_password: Input should be a valid string (got '**********')" in text
    assert "server.grpc_port: Input should be less than or equal to 65535 (got 70000)" in text  # others shown
    assert TOKEN not in text and SASL_PASSWORD not in text


def test_status_takes_the_token_from_the_environment(every_service: dict[str, ServiceParts]) -> None:
    """`linksyn status` reads LINKSYN_SERVER__GRPC_TOKEN, so the token need not appear on a command line."""
    from linksyn.cli import app
    from typer.testing import CliRunner

    for port in _serve(every_service["graph"], grpc_token=SecretStr(TOKEN)):
        target = f"127.0.0.1:{port}"
        args = ["status", "--target", target, "--json"]
        [refused] = json.loads(CliRunner().invoke(app, args, env={"LINKSYN_SERVER__GRPC_TOKEN": ""}).stdout)
        assert "UNAUTHENTICATED" in refused["error"]
        result = CliRunner().invoke(app, args, env={"LINKSYN_SERVER__GRPC_TOKEN": TOKEN})
        assert result.exit_code == 0, result.output
        [row] = json.loads(result.stdout)
        assert row["service"] == "graph" and "error" not in row
        assert TOKEN not in result.output


def test_the_sampler_streams_snapshots_from_a_graph_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    cfg = local_config(tmp_path)
    cfg.server.grpc_token = SecretStr(TOKEN)
    graph = build_service("graph", cfg, InMemoryBus())
    msgs = [Message(cfg.bus.topics.seed_kps, 0, i, None, annotated(*s).SerializeToString())
            for i, s in enumerate(HAND_SEEDS)]
    graph.stage.process(msgs)
    graph.stage.close()
    for port in _serve(graph, tls_cert=cert, tls_key=key, grpc_token=SecretStr(TOKEN)):
        cfg.sampler.graph_target = f"localhost:{port}"
        cfg.sampler.graph_tls_ca = cert
        service = build_service("sampler", cfg, InMemoryBus()).servicers[0][1].live
        assert service.refresh() is True
        assert service.sampler.snapshot.n_seeds == len(HAND_SEEDS)
        # Without the CA the sampler speaks plaintext to a TLS server: it gets nothing, and keeps no snapshot.
        cfg.sampler.graph_tls_ca = ""
        plain = build_service("sampler", cfg, InMemoryBus()).servicers[0][1].live
        assert plain.refresh() is False
