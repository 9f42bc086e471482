"""A rate-limited endpoint: an HTTP proxy on loopback with a token bucket, in front of a REAL OpenAI-compatible
server (tests.tooling.llm_server), the way a hosted API with a requests-per-second quota behaves.

Each request takes a token from a bucket of `burst` tokens refilled at `rate` per second; with a token it is forwarded
to the upstream server and the reply relayed unchanged (every completion comes from the real model); without one it
is answered at once with HTTP 429, `Retry-After` (whole seconds, rounded up) and `retry-after-ms` (the exact wait
for the next token, as OpenAI sends it). asyncio + httpx on a thread of its own:

    with RateLimitProxy(server.base_url, rate=2.0, burst=2) as proxy:
        llm = load_llm(f"openai:{proxy.base_url}#{server.model_name}")
        ...
        proxy.counts  # {"forwarded": ..., "limited": ...}
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

import httpx

from tests.tooling.ports import free_loopback_port


class TokenBucket:
    """`rate` tokens per second, at most `burst` held; starts full. Pure (the clock is passed in)."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.at = now

    def take(self, now: float) -> float:
        """0 if a token was taken, else the seconds until the next token."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimitProxy:
    """Context manager: `base_url` is the proxy's /v1; `counts` and `forwarded_at` (monotonic times of forwarded
    requests) say what it let through."""

    def __init__(self, upstream_base_url: str, rate: float, burst: float = 1.0) -> None:
        self.upstream = upstream_base_url.rstrip("/")
        self.rate = rate
        self.burst = burst
        self.port = free_loopback_port()
        self.counts = {"forwarded": 0, "limited": 0}
        self.forwarded_at: list[float] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._bucket: TokenBucket | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self, rate: float | None = None, burst: float | None = None) -> None:
        """A full bucket and zero counts (between benchmark arms)."""
        with self._lock:
            self.rate = rate or self.rate
            self.burst = burst or self.burst
            self._bucket = TokenBucket(self.rate, self.burst, time.monotonic())
            self.counts = {"forwarded": 0, "limited": 0}
            self.forwarded_at = []

    def __enter__(self) -> "RateLimitProxy":
        self.reset()
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="rate-limit-proxy", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the rate-limit proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=256), trust_env=False)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        assert self._server is not None and self._client is not None
        self._server.close()
        await self._server.wait_closed()
        await self._client.aclose()

    def _admit(self) -> float:
        with self._lock:
            assert self._bucket is not None
            now = time.monotonic()
            wait = self._bucket.take(now)
            if wait:
                self.counts["limited"] += 1
            else:
                self.counts["forwarded"] += 1
                self.forwarded_at.append(now)
            return wait

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # HTTP/1.1 keep-alive: requests one after the other on this connection
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                wait = self._admit()
                if wait:
                    payload = b'{"error": {"message": "rate limit reached: too many requests", "type": "rate_limit"}}'
                    extra = {"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}
                    await self._reply(writer, 429, payload, "application/json", extra)
                    continue
                assert self._client is not None
                fwd = {k: v for k, v in headers.items() if k in ("content-type", "authorization")}
                try:
                    r = await self._client.request(method, self.upstream + path.removeprefix("/v1"), content=body,
                                                   headers=fwd)
                except httpx.HTTPError as e:
                    message = f'{{"error": {{"message": "upstream: {type(e).__name__}"}}}}'
                    await self._reply(writer, 502, message.encode(), "application/json")
                    continue
                await self._reply(writer, r.status_code, r.content, r.headers.get("content-type", "application/json"))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, payload: bytes, ctype: str,
                     extra: dict[str, str] | None = None) -> None:
        head = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}", f"Content-Type: {ctype}",
                f"Content-Length: {len(payload)}", *(f"{k}: {v}" for k, v in (extra or {}).items())]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()
