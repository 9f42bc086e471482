"""A fault injector for an OpenAI-compatible server: an HTTP proxy on loopback in front of the REAL server.

While a fault window is open it answers every request itself, either with HTTP 500 (`errors`) or by holding the
request past the client's timeout (`stalls`); outside a window it forwards the request to the upstream server and
relays the reply unchanged. Nothing is imitated: every answered completion comes from the real model.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import httpx

from tests.tooling.ports import free_loopback_port

FaultMode = Literal["errors", "stalls"]


class LLMFaultProxy:
    """Context manager: `base_url` is the proxy's /v1; `fault(mode, seconds)` opens a window."""

    def __init__(self, upstream_base_url: str, stall_s: float = 10.0) -> None:
        self.upstream = upstream_base_url.rstrip("/")
        self.stall_s = stall_s
        self.port = free_loopback_port()
        self._mode: FaultMode | None = None
        self._until = 0.0
        self._lock = threading.Lock()
        self.counts = {"forwarded": 0, "errors": 0, "stalls": 0}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fault(self, mode: FaultMode, seconds: float) -> None:
        """From now on, for `seconds`, answer every request with the fault `mode`."""
        with self._lock:
            self._mode, self._until = mode, time.monotonic() + seconds

    def _current(self) -> FaultMode | None:
        with self._lock:
            if self._mode is not None and time.monotonic() < self._until:
                return self._mode
            return None

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def __enter__(self) -> "LLMFaultProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _relay(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode = proxy._current()
                if mode == "errors":
                    proxy._count("errors")
                    self._reply(500, b'{"error": {"message": "injected fault: internal server error"}}')
                    return
                if mode == "stalls":
                    proxy._count("stalls")
                    time.sleep(proxy.stall_s)  # the client's timeout is shorter: it has given up by now
                    self._reply(503, b'{"error": {"message": "injected fault: stalled"}}')
                    return
                proxy._count("forwarded")
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                try:
                    r = httpx.request(method, proxy.upstream + self.path.removeprefix("/v1"), content=body,
                                      headers=headers, timeout=600)
                except httpx.HTTPError as e:
                    self._reply(502, f'{{"error": {{"message": "upstream: {type(e).__name__}"}}}}'.encode())
                    return
                self._reply(r.status_code, r.content, r.headers.get("content-type", "application/json"))

            def _reply(self, status: int, payload: bytes, ctype: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

            def do_POST(self) -> None:  # noqa: N802
                self._relay("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._relay("GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="llm-fault-proxy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
