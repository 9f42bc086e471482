"""`linksyn serve NAME`: one service as an OS process: metrics endpoint, gRPC server, consumer loop, background
loops, and a clean shutdown on SIGTERM/SIGINT.

Shutdown order (DESIGN.md, "Delivery guarantees"): health goes NOT_SERVING (load balancers stop sending), background
loops are told to stop, the consumer loop stops polling, finishes or hands back in-flight work, commits, flushes and
closes; then gRPC stops with a grace period, the service's own `close` runs, the bus is flushed and closed.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from importlib import metadata
from typing import Any, Mapping

from linksyn.common.bus.base import Bus
from linksyn.common.runtime.grpc_server import build_grpc_server_with_health, set_health
from linksyn.common.runtime.loop import ConsumerLoop, describe_error
from linksyn.common.runtime.metrics import flattened_metrics, start_metrics_server, stop_metrics_server
from linksyn.common.runtime.parts import Background, ServiceParts
from linksyn.v1 import common_pb2

log = logging.getLogger(__name__)

GRPC_GRACE_S = 5.0
"""How long in-progress gRPC calls may take to finish at shutdown."""

_started_at: dict[str, float] = {}
_IMPORTED_AT = time.monotonic()


def consumer_group(service: str) -> str:
    """The consumer group of a service: every replica of it shares the group."""
    return f"linksyn.{service}"


def mark_started(service: str) -> None:
    """Record when `service` started (uptime in its Stats)."""
    _started_at[service] = time.monotonic()


def linksyn_version() -> str:
    try:
        return metadata.version("linksyn")
    except metadata.PackageNotFoundError:
        return "unknown"


def stats_reply(service: str, details: Mapping[str, Any] | None = None) -> common_pb2.StatsReply:
    """The Stats answer of `service`: its metrics (the consumer counters and any metric labelled with it),
    flattened, plus service-specific `details` as JSON."""
    return common_pb2.StatsReply(
        service=service,
        version=linksyn_version(),
        uptime_s=time.monotonic() - _started_at.get(service, _IMPORTED_AT),
        counters=flattened_metrics(service),
        details_json=json.dumps(dict(details or {}), sort_keys=True, default=str),
    )


class RuntimeStats:
    """Mixin giving a servicer the `Stats` RPC every linksyn service has. List it before the generated base
    (`class GraphServicer(RuntimeStats, graph_pb2_grpc.GraphServiceServicer)`, whose Stats is UNIMPLEMENTED), set
    `stats_service` (the service name) and override `stats_details()` to add the service's own figures."""

    stats_service: str = ""

    def stats_details(self) -> Mapping[str, Any]:
        return {}

    def Stats(self, request: common_pb2.StatsRequest, context: Any) -> common_pb2.StatsReply:  # noqa: N802 (gRPC name)
        if not self.stats_service:
            raise RuntimeError(f"{type(self).__name__}.stats_service is not set")
        return stats_reply(self.stats_service, self.stats_details())


class _BackgroundThread(threading.Thread):
    def __init__(self, service: str, loop: Background, stop: threading.Event) -> None:
        super().__init__(name=f"{service}-{type(loop).__name__}", daemon=True)
        self._loop = loop
        self._stop_event = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop.run(self._stop_event)
        except BaseException as e:  # noqa: BLE001 - reported to the runner, which shuts the service down
            self.error = e
            log.exception("background loop %s failed: %s", self.name, describe_error(e))


def run_service(
    parts: ServiceParts,
    cfg: Any,
    bus: Bus,
    *,
    stop: threading.Event | None = None,
    install_signal_handlers: bool = True,
) -> int:
    """Run a built service until SIGTERM/SIGINT (or `stop` is set); returns the process exit code: 0 after a clean
    shutdown, 1 when the consumer loop or a background loop died. Closes `bus` before returning.

    `cfg` is the whole LinksynConfig. Signal handlers are installed only when called from the main thread.
    """
    stop = stop or threading.Event()
    mark_started(parts.name)
    bus.ensure_topics(cfg.bus.topics.all_partitions())
    metrics_server, metrics_port = start_metrics_server(cfg.server.host, cfg.server.metrics_port)
    grpc_server = None
    loop: ConsumerLoop | None = None
    bg_stop = threading.Event()
    bg_threads: list[_BackgroundThread] = []
    previous_handlers: dict[int, Any] = {}
    rc = 0
    try:
        grpc_server, grpc_port, health = build_grpc_server_with_health(parts, cfg.server)
        grpc_server.start()
        if parts.stage is not None:
            loop = ConsumerLoop(bus, parts.stage, cfg.runtime.for_stage(parts.name), cfg.bus.topics,
                                consumer_group(parts.name)).start()
        for b in parts.background:
            t = _BackgroundThread(parts.name, b, bg_stop)
            t.start()
            bg_threads.append(t)
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous_handlers[sig] = signal.signal(sig, lambda signum, _frame: _on_signal(signum, stop))
        log.info(
            "linksyn %s %s serving: grpc %s:%d (%s%s), metrics http://%s:%d/metrics, %s, %d background loop(s)",
            parts.name, linksyn_version(), cfg.server.host, grpc_port,
            "tls" if cfg.server.tls_cert else "plaintext", ", token required" if cfg.server.grpc_token else "",
            cfg.server.host, metrics_port,
            f"consuming {', '.join(parts.stage.input_topics)} as group {consumer_group(parts.name)}"
            if parts.stage is not None else "no consumer",
            len(bg_threads),
        )
        while not stop.wait(0.5):
            if loop is not None and loop.finished():
                log.error("%s: the consumer loop died (%s); shutting down", parts.name, describe_error(loop.error))
                rc = 1
                break
            failed = [t for t in bg_threads if t.error is not None]
            if failed:
                log.error("%s: background loop %s failed; shutting down", parts.name, failed[0].name)
                rc = 1
                break
        set_health(health, parts.service_names, serving=False)
    finally:
        bg_stop.set()
        if loop is not None:
            if not loop.stop():
                log.error("%s: the consumer loop did not stop in time", parts.name)
                rc = 1
            elif loop.error is not None:
                rc = 1
        for t in bg_threads:
            t.join(timeout=cfg.runtime.shutdown_timeout_s)
            if t.is_alive():
                log.error("%s: background loop %s did not stop in time", parts.name, t.name)
                rc = 1
        if grpc_server is not None:
            grpc_server.stop(grace=GRPC_GRACE_S).wait()
        if parts.close is not None:
            try:
                parts.close()
            except Exception as e:  # noqa: BLE001
                log.exception("%s: close() failed: %s", parts.name, describe_error(e))
                rc = 1
        try:
            bus.flush()
            bus.close()
        except Exception as e:  # noqa: BLE001
            log.exception("%s: closing the bus failed: %s", parts.name, describe_error(e))
            rc = 1
        stop_metrics_server(metrics_server)
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    log.info("linksyn %s stopped (exit code %d)", parts.name, rc)
    return rc


def _on_signal(signum: int, stop: threading.Event) -> None:
    if stop.is_set():
        return
    log.info("received %s: shutting down", signal.Signals(signum).name)
    stop.set()
