"""The gRPC server every service runs: health, reflection (when on), bearer token, TLS, the Stats helper."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pydantic import SecretStr

from tests.common.runtime.certs import self_signed_cert

from linksyn.common.config import ServerConfig
from linksyn.common.runtime.grpc_server import build_grpc_server, grpc_channel
from linksyn.common.runtime.parts import ServiceParts
from linksyn.common.runtime.stats import RuntimeStats
from linksyn.v1 import common_pb2, sink_pb2_grpc

pytestmark = pytest.mark.timeout(60)

SERVICE = "linksyn.v1.SinkService"
TOKEN = "s3cret-token-value"


class SinkStats(RuntimeStats, sink_pb2_grpc.SinkServiceServicer):
    stats_service = "sink-under-test"

    def stats_details(self) -> dict[str, Any]:
        return {"shards": 3}


def _parts() -> ServiceParts:
    return ServiceParts(
        name="sink-under-test",
        servicers=[(sink_pb2_grpc.add_SinkServiceServicer_to_server, SinkStats())],
        service_names=[SERVICE],
    )


def _serve(cfg: ServerConfig) -> Iterator[int]:
    server, port = build_grpc_server(_parts(), cfg)
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None).wait()


@pytest.fixture
def plain_port() -> Iterator[int]:
    yield from _serve(ServerConfig(host="127.0.0.1", grpc_port=0, reflection=True))


@pytest.fixture
def token_port() -> Iterator[int]:
    yield from _serve(ServerConfig(host="127.0.0.1", grpc_port=0, grpc_token=SecretStr(TOKEN), reflection=True))


def _health(channel: grpc.Channel, service: str = "") -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def _stats(channel: grpc.Channel) -> common_pb2.StatsReply:
    return sink_pb2_grpc.SinkServiceStub(channel).Stats(common_pb2.StatsRequest(), timeout=10)


def test_health_is_serving_for_the_server_and_each_service(plain_port: int) -> None:
    with grpc_channel(f"127.0.0.1:{plain_port}") as ch:
        assert _health(ch) == health_pb2.HealthCheckResponse.SERVING
        assert _health(ch, SERVICE) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as e:
            _health(ch, "linksyn.v1.NoSuchService")
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


def _listed_services(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    return {s.name for r in responses for s in r.list_services_response.service}


def test_reflection_lists_the_service_and_health(plain_port: int) -> None:
    with grpc_channel(f"127.0.0.1:{plain_port}") as ch:
        names = _listed_services(ch)
    assert {SERVICE, "grpc.health.v1.Health"} <= names


def test_stats_helper_answers_with_name_uptime_and_details(plain_port: int) -> None:
    with grpc_channel(f"127.0.0.1:{plain_port}") as ch:
        reply = _stats(ch)
    assert reply.service == "sink-under-test" and reply.uptime_s >= 0
    assert reply.version
    assert reply.details_json == '{"shards": 3}'


def test_a_call_without_the_token_is_refused_but_health_answers(
    token_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    target = f"127.0.0.1:{token_port}"
    caplog.set_level(logging.DEBUG)
    with grpc_channel(target) as ch:
        with pytest.raises(grpc.RpcError) as e:
            _stats(ch)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "missing bearer token" in (e.value.details() or "")
        assert _health(ch) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as e:  # reflection, when on, needs the token like any API call
            _listed_services(ch)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with grpc_channel(target, token="not-the-token") as ch:
        with pytest.raises(grpc.RpcError) as e:
            _stats(ch)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "wrong bearer token" in (e.value.details() or "")
    with grpc_channel(target, token=TOKEN) as ch:
        assert _stats(ch).service == "sink-under-test"
        assert SERVICE in _listed_services(ch)
    assert "refused gRPC call /linksyn.v1.SinkService/Stats" in caplog.text
    assert TOKEN not in caplog.text and "not-the-token" not in caplog.text


def test_tls_with_token_serves_verified_clients_only(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    cfg = ServerConfig(host="127.0.0.1", grpc_port=0, tls_cert=cert, tls_key=key, grpc_token=SecretStr(TOKEN))
    for port in _serve(cfg):
        with grpc_channel(f"localhost:{port}", token=TOKEN, tls_ca=cert) as ch:
            assert _stats(ch).service == "sink-under-test"
            assert _health(ch) == health_pb2.HealthCheckResponse.SERVING
        with grpc_channel(f"localhost:{port}", token=TOKEN) as plain:  # plaintext to a TLS port
            with pytest.raises(grpc.RpcError) as e:
                _stats(plain)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_needs_both_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs both server.tls_cert and server.tls_key"):
        build_grpc_server(_parts(), ServerConfig(host="127.0.0.1", grpc_port=0, tls_cert=str(tmp_path / "c")))
    with pytest.raises(FileNotFoundError, match="server.tls_key: file"):
        build_grpc_server(
            _parts(),
            ServerConfig(host="127.0.0.1", grpc_port=0, tls_cert=str(tmp_path / "c"), tls_key=str(tmp_path / "k")),
        )
