"""The gRPC server under floods of calls that never end (issue 21): 16 open reflection streams used to take every
server thread, so health checks timed out (Kubernetes would restart the pod) and every API call waited. Now each
kind of call has its own cap, refused past it at once, and health checks always find a thread."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from linksyn.common.config import ServerConfig
from linksyn.common.runtime.grpc_server import build_grpc_server, grpc_channel
from linksyn.common.runtime.parts import ServiceParts
from linksyn.common.runtime.stats import RuntimeStats
from linksyn.v1 import common_pb2, sink_pb2_grpc
from pydantic import SecretStr

pytestmark = pytest.mark.timeout(120)

TOKEN = "flood-token-7d1c"
FLOOD = 48
"""Streams opened by the flood: three times the 16 threads the server used to have."""
ANSWER_S = 10.0
"""Deadline of the health check and the API call made during a flood (they answer in milliseconds)."""


class BlockingSink(RuntimeStats, sink_pb2_grpc.SinkServiceServicer):
    """Stats blocks until `release` is set while `hold` is set: an API call that takes long."""

    stats_service = "sink-flood"

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def Stats(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if self.hold.is_set():
            self.entered.release()
            self.release.wait(60)
        return super().Stats(request, context)


def _server(servicer: BlockingSink, **cfg: Any) -> Iterator[int]:
    if "reflection" in cfg and "reflection" not in ServerConfig.model_fields:
        del cfg["reflection"]  # a build from before the option (reflection was always on)
    parts = ServiceParts(name="sink-flood", servicers=[(sink_pb2_grpc.add_SinkServiceServicer_to_server, servicer)],
                         service_names=["linksyn.v1.SinkService"])
    server, port = build_grpc_server(parts, ServerConfig(host="127.0.0.1", grpc_port=0, **cfg))
    server.start()
    try:
        yield port
    finally:
        servicer.release.set()
        server.stop(grace=None).wait()


class Flood:
    """FLOOD reflection streams that never send a request (each holds its server handler waiting for one).
    `codes` has, per stream, the error it was refused with, or "open" while the server holds it."""

    def __init__(self, target: str, expect_open: int, token: str | None = None) -> None:
        self.channel = grpc_channel(target, token=token)
        self.stop = threading.Event()
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        # A dropped call is cancelled: keep every one, as an attacker would.
        self.calls = [stub.ServerReflectionInfo(self._requests()) for _ in range(FLOOD)]
        self.codes: list[Any] = ["open"] * FLOOD
        for i in range(FLOOD):
            threading.Thread(target=self._wait, args=(i,), daemon=True).start()
        # Refusals come at once; wait until all but `expect_open` came (or ANSWER_S passed), then a little more.
        deadline = time.monotonic() + ANSWER_S
        while self.open > expect_open and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)

    def _wait(self, i: int) -> None:
        try:
            for _ in self.calls[i]:
                pass
        except grpc.RpcError as e:
            if not self.stop.is_set():
                self.codes[i] = e.code()

    def _requests(self) -> Iterator[reflection_pb2.ServerReflectionRequest]:
        self.stop.wait(60)
        yield from ()

    @property
    def open(self) -> int:
        return self.codes.count("open")

    def close(self) -> None:
        self.stop.set()
        self.channel.close()


def _health_and_api_answer(target: str, token: str | None) -> None:
    with grpc_channel(target) as ch:
        check = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=ANSWER_S)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
    with grpc_channel(target, token=token) as ch:
        stats = sink_pb2_grpc.SinkServiceStub(ch).Stats(common_pb2.StatsRequest(), timeout=ANSWER_S)
        assert stats.service == "sink-flood"


@pytest.mark.parametrize("token", [None, TOKEN], ids=["no-token", "token"])
def test_health_and_an_authenticated_call_answer_while_reflection_streams_flood(token: str | None) -> None:
    servicer = BlockingSink()
    auth = {"grpc_token": SecretStr(token)} if token else {}
    for port in _server(servicer, reflection=True, **auth):
        target = f"127.0.0.1:{port}"
        flood = Flood(target, expect_open=0 if token else 2)  # unauthenticated
        try:
            _health_and_api_answer(target, token)
            if token:
                assert set(flood.codes) == {grpc.StatusCode.UNAUTHENTICATED}  # reflection needs the token too
            else:  # server.max_open_streams (2) are held; the rest were refused at once
                assert flood.open == 2 and set(flood.codes) == {"open", grpc.StatusCode.RESOURCE_EXHAUSTED}
        finally:
            flood.close()


def test_reflection_is_off_by_default() -> None:
    if "reflection" not in ServerConfig.model_fields:
        pytest.fail("this build has no server.reflection switch: reflection is always on")
    servicer = BlockingSink()
    for port in _server(servicer):
        flood = Flood(f"127.0.0.1:{port}", expect_open=0)
        try:
            assert set(flood.codes) == {grpc.StatusCode.UNIMPLEMENTED}
        finally:
            flood.close()


def test_api_calls_past_the_cap_are_refused_and_health_still_answers() -> None:
    servicer = BlockingSink()
    servicer.hold.set()
    cap = 3
    for port in _server(servicer, max_concurrent_calls=cap, grpc_token=SecretStr(TOKEN)):
        target = f"127.0.0.1:{port}"
        with grpc_channel(target, token=TOKEN) as ch:
            stub = sink_pb2_grpc.SinkServiceStub(ch)
            slow = [stub.Stats.future(common_pb2.StatsRequest(), timeout=60) for _ in range(cap)]
            for _ in range(cap):
                assert servicer.entered.acquire(timeout=30)
            with pytest.raises(grpc.RpcError) as e:
                stub.Stats(common_pb2.StatsRequest(), timeout=ANSWER_S)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "server.max_concurrent_calls" in (e.value.details() or "")
            check = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=ANSWER_S)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            servicer.release.set()
            assert all(f.result().service == "sink-flood" for f in slow)
            servicer.hold.clear()
            assert stub.Stats(common_pb2.StatsRequest(), timeout=ANSWER_S).service == "sink-flood"  # slots freed
