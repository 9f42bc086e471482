"""The service host: starts a built service's parts and stops them in order. One host runs a service wherever it
runs: `linksyn serve NAME` (one OS process on Kafka, with its gRPC server and /metrics endpoint: `run_service`) and
`linksyn run` (every stage in one process over the in-memory bus, without network endpoints: linksyn.pipeline).

Shutdown order (DESIGN.md, "Delivery guarantees"): health goes NOT_SERVING (load balancers stop sending), background
loops are told to stop, the consumer loop stops polling, finishes or hands back in-flight work, commits, flushes and
closes; background loops are joined; gRPC stops with a grace period; the service's own `close` runs.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from linksyn.common.bus.base import Bus
from linksyn.common.config import SharedConfig
from linksyn.common.runtime.loop import ConsumerLoop, describe_error
from linksyn.common.runtime.parts import Background, ServiceParts
from linksyn.common.runtime.stats import linksyn_version, mark_started

log = logging.getLogger(__name__)

GRPC_GRACE_S = 5.0
"""How long in-progress gRPC calls may take to finish at shutdown."""


def consumer_group(service: str) -> str:
    """The consumer group of a service: every replica of it shares the group."""
    return f"linksyn.{service}"


class _BackgroundThread(threading.Thread):
    def __init__(self, service: str, index: int, loop: Background, stop: threading.Event) -> None:
        super().__init__(name=f"{service}-background-{index}", daemon=True)
        self._loop = loop
        self._stop_event = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop.run(self._stop_event)
        except BaseException as e:  # noqa: BLE001 - reported through the host, which shuts the service down
            self.error = e
            log.exception("background loop %s failed: %s", self.name, describe_error(e))


class ServiceHost:
    """Runs one built service: its consumer loop on the bus, its background loops, and with `endpoints` its gRPC
    server (API, health, reflection) and Prometheus /metrics endpoint.

    `start()` starts everything (background loops may be held back and started later with `start_background()`:
    the embedded pipeline starts a stage's producers once its upstream has finished); `failure()` says whether a
    part died; `stop()` shuts down in order and returns whether everything stopped cleanly. The bus belongs to the
    caller: the host never closes it.
    """

    def __init__(self, parts: ServiceParts, shared: SharedConfig, bus: Bus, *, endpoints: bool = True) -> None:
        self.parts = parts
        self.shared = shared
        self.bus = bus
        self.endpoints = endpoints
        self.loop: ConsumerLoop | None = None
        self.grpc_port = 0
        self.metrics_port = 0
        self._grpc_server: Any = None
        self._health: Any = None
        self._metrics_server: Any = None
        self._bg_stop = threading.Event()
        self._bg_threads: list[_BackgroundThread] = []
        self._stopped = False
        self.problems: list[str] = []
        """What went wrong while stopping (empty after a clean stop)."""

    @property
    def name(self) -> str:
        return self.parts.name

    def start(self, background: bool = True) -> "ServiceHost":
        """Endpoints (if asked for), the consumer loop, and the background loops unless `background` is False."""
        from linksyn.common.runtime.grpc_server import build_grpc_server_with_health
        from linksyn.common.runtime.metrics import start_metrics_server

        mark_started(self.name)
        if self.endpoints:
            server = self.shared.server
            if self.parts.token_required and server.grpc_token is None:
                raise ValueError(f"{self.name}: server.grpc_token (LINKSYN_SERVER__GRPC_TOKEN) must be set: "
                                 f"{self.parts.token_required}")
            self._metrics_server, self.metrics_port = start_metrics_server(server.host, server.metrics_port)
            self._grpc_server, self.grpc_port, self._health = build_grpc_server_with_health(self.parts, server)
            self._grpc_server.start()
        if self.parts.stage is not None:
            self.loop = ConsumerLoop(
                self.bus, self.parts.stage, self.shared.runtime.for_stage(self.name), self.shared.bus.topics,
                consumer_group(self.name),
            ).start()
        if background:
            self.start_background()
        return self

    def start_background(self) -> None:
        """Start the background loops (once)."""
        if self._bg_threads:
            return
        for i, b in enumerate(self.parts.background):
            t = _BackgroundThread(self.name, i, b, self._bg_stop)
            t.start()
            self._bg_threads.append(t)

    def background_running(self) -> int:
        """How many background loops are still working."""
        return sum(t.is_alive() for t in self._bg_threads)

    def background_errors(self) -> list[str]:
        return [f"{t.name}: {describe_error(t.error)}" for t in self._bg_threads if t.error is not None]

    def failure(self) -> str | None:
        """Why the service cannot go on (its consumer loop died, a background loop failed), or None."""
        if self.loop is not None and self.loop.finished() and not self._stopped:
            return f"the consumer loop died: {describe_error(self.loop.error) if self.loop.error else 'it ended'}"
        errors = self.background_errors()
        return "background loop failed: " + "; ".join(errors) if errors else None

    def stop(self) -> bool:
        """Shut everything down in order (idempotent). True when every part stopped cleanly and `close` succeeded;
        otherwise `problems` says what did not."""
        if self._stopped:
            return not self.problems
        self._stopped = True
        timeout = self.shared.runtime.shutdown_timeout_s
        if self._health is not None:
            from linksyn.common.runtime.grpc_server import set_health

            set_health(self._health, self.parts.service_names, serving=False)
        self._bg_stop.set()
        if self.loop is not None:
            if not self.loop.stop():
                self._problem("the consumer loop did not stop in time")
            elif self.loop.error is not None:
                self._problem(f"the consumer loop failed: {describe_error(self.loop.error)}")
        for t in self._bg_threads:
            t.join(timeout=timeout)
            if t.is_alive():
                self._problem(f"background loop {t.name} did not stop in time")
            elif t.error is not None:
                self._problem(f"background loop {t.name} failed: {describe_error(t.error)}")
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=GRPC_GRACE_S).wait()
        if self.parts.close is not None:
            try:
                self.parts.close()
            except Exception as e:  # noqa: BLE001 - reported, the shutdown goes on
                log.exception("%s: close() failed", self.name)
                self.problems.append(f"close failed: {describe_error(e)}")
        if self._metrics_server is not None:
            from linksyn.common.runtime.metrics import stop_metrics_server

            stop_metrics_server(self._metrics_server)
        return not self.problems

    def _problem(self, text: str) -> None:
        log.error("%s: %s", self.name, text)
        self.problems.append(text)


def run_service(
    parts: ServiceParts,
    shared: SharedConfig,
    bus: Bus,
    *,
    stop: threading.Event | None = None,
    install_signal_handlers: bool = True,
) -> int:
    """`linksyn serve`: host a built service until SIGTERM/SIGINT (or `stop` is set); returns the process exit code:
    0 after a clean shutdown, 1 when a part died or did not stop cleanly. Flushes and closes `bus` before returning.

    Signal handlers are installed only when called from the main thread.
    """
    stop = stop or threading.Event()
    bus.ensure_topics(shared.bus.topics.all_partitions())
    host = ServiceHost(parts, shared, bus)
    previous_handlers: dict[int, Any] = {}
    rc = 0
    try:
        host.start()
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous_handlers[sig] = signal.signal(sig, lambda signum, _frame: _on_signal(signum, stop))
        server = shared.server
        log.info(
            "linksyn %s %s serving: grpc %s:%d (%s%s), metrics http://%s:%d/metrics, %s, %d background loop(s)",
            parts.name, linksyn_version(), server.host, host.grpc_port,
            "tls" if server.tls_cert else "plaintext", ", token required" if server.grpc_token else "",
            server.host, host.metrics_port,
            f"consuming {', '.join(parts.stage.input_topics)} as group {consumer_group(parts.name)}"
            if parts.stage is not None else "no consumer",
            len(parts.background),
        )
        while not stop.wait(0.5):
            failure = host.failure()
            if failure:
                log.error("%s: %s; shutting down", parts.name, failure)
                rc = 1
                break
    finally:
        if not host.stop():
            rc = 1
        try:
            bus.flush()
            bus.close()
        except Exception as e:  # noqa: BLE001
            log.exception("%s: closing the bus failed: %s", parts.name, describe_error(e))
            rc = 1
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    log.info("linksyn %s stopped (exit code %d)", parts.name, rc)
    return rc


def _on_signal(signum: int, stop: threading.Event) -> None:
    if stop.is_set():
        return
    log.info("received %s: shutting down", signal.Signals(signum).name)
    stop.set()
