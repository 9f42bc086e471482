"""The gRPC server of a service: its servicers, `grpc.health.v1`, optional reflection, TLS and bearer token, and
caps on the calls in progress.

Health checks stay open without the token, so Kubernetes probes work; every other call (reflection included, when
`server.reflection` turns it on) needs `authorization: Bearer <token>` when `server.grpc_token` is set. The token is
compared in constant time and never logged. Requests over `server.max_request_bytes` are refused with
RESOURCE_EXHAUSTED before parsing.

Every call holds a server thread while it runs, a stream for as long as the client keeps it open. So calls are
counted by kind and refused at once (RESOURCE_EXHAUSTED) past their cap: API calls past
`server.max_concurrent_calls`, reflection and health Watch streams past `server.max_open_streams`; the thread pool
is larger than both caps together, so a health check and a refusal always find a thread, whatever clients hold open.
"""

from __future__ import annotations

import hmac
import logging
import threading
from concurrent import futures
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from linksyn.common.config import ServerConfig
from linksyn.common.runtime.parts import ServiceParts

log = logging.getLogger(__name__)

SPARE_THREADS = 4
"""Server threads beyond the two caps: health checks and refusals run on these."""
HEALTH_SERVICE = health.SERVICE_NAME
HEALTH_CHECK = f"/{health.SERVICE_NAME}/Check"
OPEN_METHOD_PREFIXES = (f"/{health.SERVICE_NAME}/",)
"""Calls allowed without the token: health checks (Kubernetes probes)."""
STREAM_METHOD_PREFIXES = (
    f"/{health.SERVICE_NAME}/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
"""Calls counted against server.max_open_streams."""


def server_threads(cfg: ServerConfig) -> int:
    """Threads of the server's pool: both caps and the spare threads health checks and refusals use."""
    return cfg.max_concurrent_calls + cfg.max_open_streams + SPARE_THREADS


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses, with UNAUTHENTICATED, every call without `authorization: Bearer <token>` (health checks excepted)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the gRPC bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None], details: Any
    ) -> grpc.RpcMethodHandler | None:
        method: str = details.method or ""
        if method.startswith(OPEN_METHOD_PREFIXES):
            return continuation(details)
        given = b""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else bytes(value)
                break
        if hmac.compare_digest(given, self._expected):
            return continuation(details)
        handler = continuation(details)
        if handler is None:
            return None  # unknown method: let gRPC answer UNIMPLEMENTED
        reason = "missing bearer token" if not given else "wrong bearer token"
        log.warning("refused gRPC call %s: %s", method, reason)
        return _refusal(handler, reason)


def _refusal(handler: grpc.RpcMethodHandler, reason: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that aborts with UNAUTHENTICATED."""

    def abort(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{reason}: send 'authorization: Bearer <token>' metadata")

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


class CallLimitInterceptor(grpc.ServerInterceptor):
    """Counts the calls in progress by kind and refuses, with RESOURCE_EXHAUSTED, one past its kind's cap: API calls
    (server.max_concurrent_calls), reflection and health Watch streams (server.max_open_streams). Health checks are
    not counted: they never wait on anything."""

    def __init__(self, cfg: ServerConfig) -> None:
        self._kinds = {
            "api": (threading.BoundedSemaphore(cfg.max_concurrent_calls),
                    f"{cfg.max_concurrent_calls} API calls are in progress, server.max_concurrent_calls"),
            "stream": (threading.BoundedSemaphore(cfg.max_open_streams),
                       f"{cfg.max_open_streams} reflection/health-watch streams are open, server.max_open_streams"),
        }

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None], details: Any
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        method: str = details.method or ""
        if handler is None or method == HEALTH_CHECK:
            return handler
        kind = "stream" if method.startswith(STREAM_METHOD_PREFIXES) else "api"
        return _limited(handler, *self._kinds[kind])


def _limited(handler: grpc.RpcMethodHandler, slots: threading.BoundedSemaphore, what: str) -> grpc.RpcMethodHandler:
    """`handler` that takes one of `slots` for as long as it runs (a streamed reply: until it ends or is dropped), or
    aborts at once with RESOURCE_EXHAUSTED when none is free."""

    def take(context: grpc.ServicerContext) -> None:
        if not slots.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{what}; try again later")

    def unary(behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            take(context)
            try:
                return behaviour(request, context)
            finally:
                slots.release()

        return run

    def streamed(behaviour: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
        def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            take(context)
            try:
                yield from behaviour(request, context)
            finally:  # also when the client goes away: the dropped generator is closed
                slots.release()

        return run

    kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streamed(handler.stream_stream), **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streamed(handler.unary_stream), **kw)
    return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kw)


def _read_pem(path: str, what: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"server.{what}: file {path!r} does not exist")
    return p.read_bytes()


def server_credentials(cfg: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from server.tls_cert / server.tls_key, or None for plaintext."""
    if not cfg.tls_cert and not cfg.tls_key:
        return None
    if not (cfg.tls_cert and cfg.tls_key):
        raise ValueError(
            f"gRPC TLS needs both server.tls_cert and server.tls_key (got tls_cert={cfg.tls_cert!r}, "
            f"tls_key={cfg.tls_key!r})"
        )
    return grpc.ssl_server_credentials([(_read_pem(cfg.tls_key, "tls_key"), _read_pem(cfg.tls_cert, "tls_cert"))])


def build_grpc_server(parts: ServiceParts, cfg: ServerConfig) -> tuple[grpc.Server, int]:
    """A gRPC server (bound, not started) with the servicers of `parts`, health (SERVING for '' and every service
    name), reflection if `cfg.reflection`, TLS, the bearer token and the call caps as `cfg` says. Returns (server,
    bound port)."""
    server, port, _health = build_grpc_server_with_health(parts, cfg)
    return server, port


def build_grpc_server_with_health(
    parts: ServiceParts, cfg: ServerConfig
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """build_grpc_server, also returning the health servicer (the runner sets NOT_SERVING with it at shutdown)."""
    token = cfg.grpc_token.get_secret_value() if cfg.grpc_token is not None else None
    # The token check comes first: a call without it is refused before it is counted.
    interceptors: list[grpc.ServerInterceptor] = [BearerTokenInterceptor(token)] if token else []
    interceptors.append(CallLimitInterceptor(cfg))
    # Oversized requests are refused by gRPC itself (RESOURCE_EXHAUSTED naming both sizes) before any parsing.
    options = [("grpc.max_receive_message_length", cfg.max_request_bytes)]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=server_threads(cfg)), interceptors=interceptors, options=options
    )
    for add, servicer in parts.servicers:
        add(servicer, server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names: Sequence[str] = list(dict.fromkeys(parts.service_names))
    for name in ("", *names):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if cfg.reflection:
        reflection.enable_server_reflection([*names, HEALTH_SERVICE, reflection.SERVICE_NAME], server)
    address = f"{cfg.host}:{cfg.grpc_port}"
    creds = server_credentials(cfg)
    try:
        port = server.add_secure_port(address, creds) if creds is not None else server.add_insecure_port(address)
    except RuntimeError as e:
        raise OSError(f"cannot bind the gRPC server to {address}: {e}") from e
    if not port:
        raise OSError(f"cannot bind the gRPC server to {address}")
    return server, port, health_servicer


def set_health(health_servicer: health.HealthServicer, names: Sequence[str], serving: bool) -> None:
    """Set '' and every name to SERVING or NOT_SERVING."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *names):
        health_servicer.set(name, status)


class _TokenClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call (works on plaintext channels too, unlike call
    credentials)."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self._header]
        return _CallDetails(
            details.method, details.timeout, metadata, details.credentials,
            getattr(details, "wait_for_ready", None), getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(
        self, method: str, timeout: Any, metadata: Any, credentials: Any, wait_for_ready: Any, compression: Any
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def grpc_channel(
    target: str,
    token: str | None = None,
    tls_ca: str | None = None,
    tls_server_name: str | None = None,
    max_receive_bytes: int | None = None,
) -> grpc.Channel:
    """A client channel to `target` ("host:port"): TLS verified against the CA bundle `tls_ca` when given
    (`tls_server_name` overrides the name checked against the certificate), plaintext otherwise; `token` is sent
    as a bearer token on every call; `max_receive_bytes` raises gRPC's 4 MiB limit on one reply message."""
    options: list[tuple[str, Any]] = []
    if max_receive_bytes:
        options.append(("grpc.max_receive_message_length", max_receive_bytes))
    if tls_ca:
        creds = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
        if tls_server_name:
            options.append(("grpc.ssl_target_name_override", tls_server_name))
        channel = grpc.secure_channel(target, creds, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    if token:
        channel = grpc.intercept_channel(channel, _TokenClientInterceptor(token))
    return channel
