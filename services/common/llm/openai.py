"""The `openai` backend: any OpenAI-compatible chat-completions server (vllm serve, SGLang, llama.cpp, DeepSeek...).

Requests run on an event loop that lives on the backend's own thread. `submit()` hands back one future per request,
resolved as soon as that request is done (`generate()` waits for all of a batch). Which endpoint (base URL) an attempt
goes to and how many are in flight is flow control's (linksyn.common.llm.flow): an adaptive or fixed concurrency
limit per endpoint, Retry-After cool-downs, a circuit breaker, load shared by health. Transient failures (5xx,
timeouts, connection errors, malformed replies; 429s in fixed mode) are retried with exponential backoff and jitter;
a request that still fails comes back with `error` set while the rest of the batch stands. A reply body over
`max_reply_bytes` is not read further; its request fails without retries. Each base URL's API key is read from the
environment variable the config names for it (api_key_env_for) and only ever placed in that URL's Authorization
header.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

import httpx
from linksyn.common import bounded_json
from linksyn.common.config import redact_url_passwords
from linksyn.common.llm import metrics
from linksyn.common.llm.base import LLM, ChatRequest, Completion
from linksyn.common.llm.config import LLMConfig
from linksyn.common.llm.flow import AllCircuitsOpen, Endpoint, EndpointPool, Outcome
from linksyn.common.llm.spec import ModelSpec, ModelSpecError
from linksyn.common.retry import backoff_delay

log = logging.getLogger(__name__)

# Structured-output modes, strongest first; 'auto' steps down this list when a server rejects a mode.
# 'json_object_schema' is the llama.cpp / Anyscale form: {"type": "json_object", "schema": ...}.
STRUCTURED_MODES = ("json_schema", "json_object_schema", "json_object", "none")
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
BODY_EXCERPT_CHARS = 300


def chat_fields(request: ChatRequest) -> dict[str, Any]:
    """Messages and sampling settings of one request in the OpenAI chat-completions form (also what
    llama-cpp-python's create_chat_completion takes)."""
    return {"messages": [dict(m) for m in request.messages], **request.params.as_kwargs()}


def request_body(model: str, request: ChatRequest, mode: str) -> dict[str, Any]:
    """The chat-completions JSON body of one request, with the schema sent the way `mode` says."""
    body: dict[str, Any] = {"model": model, **chat_fields(request)}
    if request.json_schema is not None:
        if mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": request.json_schema, "strict": True},
            }
        elif mode == "json_object_schema":
            body["response_format"] = {"type": "json_object", "schema": request.json_schema}
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object"}
    return body


def parse_reply(data: Any) -> Completion:
    """A Completion from a chat-completions response body; raises ValueError if the body is not one. Usage counts
    that are not non-negative integers are taken as 0 (a server's bookkeeping never fails a reply)."""
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as e:
        raise ValueError(f"reply has no choices[0].message.content ({e!r})") from e
    if text is not None and not isinstance(text, str):
        raise ValueError(f"reply's choices[0].message.content is a {type(text).__name__}, not text")
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Completion(
        text=text or "",
        prompt_tokens=_token_count(usage.get("prompt_tokens")),
        completion_tokens=_token_count(usage.get("completion_tokens")),
        finish_reason=str(choice.get("finish_reason") or ""),
    )


def _token_count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _mentions_response_format(body: str) -> bool:
    low = body.lower()
    return any(w in low for w in ("response_format", "json_schema", "json schema", "grammar", "schema"))


@dataclass
class _Failure:
    """Why the last attempt of a request failed."""

    message: str
    retryable: bool
    status: int | None = None
    body: str = ""
    retry_after: str | None = None
    """The server's wait hint in seconds (retry-after-ms or Retry-After), if it sent one."""
    overloaded: bool = False
    """Turned away for load (429, 503)."""
    circuit: bool = False
    """Not sent at all: every endpoint's circuit was open."""


OVERLOAD_STATUS = frozenset({429, 503})
"""Statuses that mean "too much load now" rather than "broken": flow control backs off and honours Retry-After."""


def retry_after_seconds(headers: httpx.Headers) -> str | None:
    """The server's wait hint in seconds, as text for backoff_delay: `retry-after-ms` (OpenAI's, precise) wins over
    `Retry-After` (whole seconds, or an HTTP date, which backoff_delay ignores)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return str(float(ms) / 1000.0)
        except ValueError:
            pass
    return headers.get("retry-after")


def api_key_env_for(base_url: str, config: LLMConfig, main: ModelSpec | None = None) -> str | None:
    """The environment variable whose key goes to `base_url`: its entry in llm.api_keys, else llm.api_key_env when
    this is the stage's own model (`main` None) or shares one of the main model's base URLs; None: no key."""
    url = base_url.rstrip("/")
    for listed, env in config.api_keys.items():
        if listed.rstrip("/") == url:
            return env
    if main is None or (main.scheme == "openai" and url in (u.rstrip("/") for u in main.urls or (main.target,))):
        return config.api_key_env
    return None


def check_key_transport(base_url: str, config: LLMConfig) -> None:
    """ModelSpecError unless a key may go to `base_url`: https, or http to a loopback host, or
    llm.allow_plaintext_api_key."""
    parts = urlsplit(base_url)
    if parts.scheme == "https" or config.allow_plaintext_api_key:
        return
    host = (parts.hostname or "").lower()
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if not loopback:
        raise ModelSpecError(
            f"an API key would be sent in clear text to {base_url!r}: use https://, unset the key for this endpoint "
            "(llm.api_key_env / llm.api_keys), or set llm.allow_plaintext_api_key"
        )


class OpenAILLM(LLM):
    """Client of one model on one or more OpenAI-compatible endpoints."""

    def __init__(
        self, base_url: str | Sequence[str], model: str, config: LLMConfig | None = None,
        api_key_env: str | Mapping[str, str | None] | None = None, service: str = "",
    ) -> None:
        """`api_key_env`: the variable holding the key of every base URL, or one per base URL (see
        api_key_env_for); None = no key."""
        super().__init__()
        self.config = config or LLMConfig()
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.base_urls = [u.rstrip("/") for u in urls]
        self.base_url = self.base_urls[0]
        self.model = model
        self.model_name = f"openai:{model}"
        self.service = service
        envs = api_key_env if isinstance(api_key_env, Mapping) else dict.fromkeys(self.base_urls, api_key_env)
        self.__api_keys: dict[str, str] = {}
        for url in self.base_urls:
            env = envs.get(url)
            key = (os.environ.get(env) or None) if env else None
            if key:
                check_key_transport(url, self.config)
                self.__api_keys[url] = key
        mode = self.config.structured_output
        self._mode_index = 0 if mode == "auto" else STRUCTURED_MODES.index(mode)
        self._auto = mode == "auto"
        self._pool = EndpointPool(self.base_urls, self.config, on_change=self._observe_endpoint)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"llm-openai-{model}", daemon=True)
        self._thread.start()
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._closed = False

    def __repr__(self) -> str:
        urls = [redact_url_passwords(u) for u in self.base_urls]
        shown = urls[0] if len(urls) == 1 else urls
        return f"OpenAILLM(base_url={shown!r}, model={self.model!r}, api_key={'set' if self.__api_keys else 'unset'})"

    @property
    def structured_mode(self) -> str:
        """How schemas are sent now ('json_schema', 'json_object' or 'none'); steps down in 'auto' mode."""
        return STRUCTURED_MODES[self._mode_index]

    @property
    def endpoints(self) -> list[Endpoint]:
        """Flow state of each base URL (read-only use: it belongs to the client's event loop)."""
        return self._pool.endpoints

    def submit(self, requests: Sequence[ChatRequest]) -> list[Future[Completion]]:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        return [asyncio.run_coroutine_threadsafe(self._one(r), self._loop) for r in requests]

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return [f.result() for f in self.submit(requests)]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in self._clients.values():
            asyncio.run_coroutine_threadsafe(client.aclose(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # --- on the loop thread ---

    def _observe_endpoint(self, e: Endpoint) -> None:
        labels = (self.service, self.model_name, redact_url_passwords(e.url))
        metrics.CONCURRENCY_LIMIT.labels(*labels).set(e.limit.slots)
        metrics.IN_FLIGHT.labels(*labels).set(e.in_flight)
        metrics.CIRCUIT_STATE.labels(*labels).set(e.circuit.state.value)

    def _http(self, url: str) -> httpx.AsyncClient:
        client = self._clients.get(url)
        if client is None:
            c = self.config
            key = self.__api_keys.get(url)
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            client = self._clients[url] = httpx.AsyncClient(
                base_url=url,
                headers=headers,
                timeout=httpx.Timeout(c.request_timeout_s, connect=c.connect_timeout_s),
                limits=httpx.Limits(max_connections=c.max_concurrency, max_keepalive_connections=c.max_concurrency),
            )
        return client

    def _redact(self, text: str) -> str:
        for key in self.__api_keys.values():
            text = text.replace(key, "***")
        return text

    async def _one(self, request: ChatRequest) -> Completion:
        result = await self._complete(request)
        self.usage.add(result)
        return result

    async def _complete(self, request: ChatRequest) -> Completion:
        c = self.config
        adaptive = c.concurrency == "adaptive"
        attempt = 0
        overloaded_since: float | None = None
        failure: _Failure | None = None
        while attempt < c.retry.max_attempts:
            mode = self.structured_mode
            result = await self._send(request, mode)
            if isinstance(result, Completion):
                result.meta.update({"engine": "openai", "attempts": attempt + 1, "structured_output": mode})
                return result
            failure = result
            if failure.overloaded and adaptive:
                # Flow control, not a failure: the limit was cut and the endpoint pauses until its Retry-After;
                # the request waits its turn again without spending an attempt, for up to overload_timeout_s.
                now = time.monotonic()
                overloaded_since = overloaded_since or now
                if now - overloaded_since < c.flow.overload_timeout_s:
                    self._count_retry("overloaded")
                    continue
            attempt += 1
            if self._rejects_structured_output(request, mode, failure):
                # The server may not support this form of structured output: step down the list for this request,
                # and remember the form only once one succeeds (the 400 could be this request's own fault).
                stepped = await self._step_down(request, STRUCTURED_MODES.index(mode), attempt)
                if stepped is not None:
                    return stepped
            if not failure.retryable or attempt >= c.retry.max_attempts:
                break
            delay = backoff_delay(attempt, c.retry, jitter=True, retry_after=failure.retry_after)
            log.info("request %r attempt %d failed (%s); retrying in %.2fs",
                     request.request_id, attempt, failure.message, delay)
            self._count_retry("circuit_open" if failure.circuit else "overloaded" if failure.overloaded else "failed")
            await asyncio.sleep(delay)
        assert failure is not None
        return Completion(
            error=f"{failure.message} (after {attempt} attempt{'s' if attempt > 1 else ''})",
            retryable=failure.retryable,
            meta={"engine": "openai", "attempts": attempt, "status": failure.status},
        )

    def _count_retry(self, reason: str) -> None:
        metrics.RETRIES.labels(self.service, self.model_name, reason).inc()

    async def _send(self, request: ChatRequest, mode: str) -> Completion | _Failure:
        """One attempt on whichever endpoint flow control picks, its outcome reported back."""
        try:
            slot = await self._pool.acquire()
        except AllCircuitsOpen as e:
            return _Failure(f"every endpoint's circuit is open ({e})", True, circuit=True)
        try:
            result = await self._attempt(slot.endpoint.url, request, mode)
        except BaseException:
            slot.release(Outcome.FAILED, error="the attempt was interrupted")  # never leak the slot (cancellation)
            raise
        if isinstance(result, Completion):
            outcome = Outcome.OK
        elif self._rejects_structured_output(request, mode, result):
            outcome = Outcome.REJECTED  # this request's form of structured output, not the endpoint's health
        elif result.overloaded:
            throttled = result.status == 429 and result.retry_after is not None
            outcome = Outcome.THROTTLED if throttled else Outcome.OVERLOADED
        elif result.retryable:
            outcome = Outcome.FAILED
        else:
            outcome = Outcome.REJECTED
        retry_after = None
        if isinstance(result, _Failure) and result.retry_after:
            retry_after = backoff_delay(1, self.config.retry, retry_after=result.retry_after)
        elif outcome in (Outcome.OVERLOADED, Outcome.THROTTLED):
            # No hint: the endpoint pauses on our own schedule, doubling with each overload in a row.
            retry_after = backoff_delay(slot.endpoint.overloads_in_row + 1, self.config.retry, jitter=True)
        slot.release(
            outcome,
            completion_tokens=result.completion_tokens if isinstance(result, Completion) else 0,
            retry_after_s=retry_after,
            error=result.message if isinstance(result, _Failure) else "",
        )
        metrics.ATTEMPTS.labels(self.service, self.model_name, redact_url_passwords(slot.endpoint.url),
                                outcome.value).inc()
        return result

    def _rejects_structured_output(self, request: ChatRequest, mode: str, failure: _Failure) -> bool:
        return (
            self._auto
            and request.json_schema is not None
            and mode != STRUCTURED_MODES[-1]
            and (
                (failure.status in (400, 422) and _mentions_response_format(failure.body))
                # llama-cpp-python's server answers an unknown response_format type with a 500 naming the field
                or (failure.status is not None and failure.status >= 500 and "response_format" in failure.body)
            )
        )

    async def _step_down(self, request: ChatRequest, index: int, attempt: int) -> Completion | None:
        """Try the weaker structured-output forms below `index` in turn; the first that succeeds is remembered."""
        for lower_index in range(index + 1, len(STRUCTURED_MODES)):
            lower = STRUCTURED_MODES[lower_index]
            result = await self._send(request, lower)
            if isinstance(result, Completion):
                if self._mode_index < lower_index:
                    log.warning("server %s rejected structured output %r; using %r from now on",
                                self.base_url, STRUCTURED_MODES[index], lower)
                    self._mode_index = lower_index
                result.meta.update({"engine": "openai", "attempts": attempt, "structured_output": lower})
                return result
            if not self._rejects_structured_output(request, lower, result):
                return None
        return None

    async def _attempt(self, url: str, request: ChatRequest, mode: str) -> Completion | _Failure:
        client = self._http(url)
        body = request_body(self.model, request, mode)
        limit = self.config.max_reply_bytes
        try:
            async with asyncio.timeout(self.config.request_timeout_s):
                async with client.stream("POST", "/chat/completions", json=body) as resp:
                    content = await _read_limited(resp, limit)
        except (TimeoutError, httpx.TimeoutException) as e:
            return _Failure(f"timeout after {self.config.request_timeout_s:g}s ({type(e).__name__})", True)
        except httpx.TransportError as e:
            return _Failure(f"connection error: {type(e).__name__}: {self._redact(str(e))[:BODY_EXCERPT_CHARS]}", True)
        if content is None:
            # Not retried: a server that answers this much will do it again, and the record fails with the reason.
            return _Failure(
                f"reply of more than {limit} bytes exceeds llm.max_reply_bytes={limit} (HTTP {resp.status_code})",
                False, resp.status_code,
            )
        text = content.decode(resp.encoding or "utf-8", errors="replace")
        if resp.status_code != 200:
            excerpt = self._redact(text[:BODY_EXCERPT_CHARS])
            retryable = resp.status_code in RETRYABLE_STATUS or resp.status_code >= 500
            return _Failure(f"HTTP {resp.status_code}: {excerpt}", retryable, resp.status_code, excerpt,
                            retry_after_seconds(resp.headers), overloaded=resp.status_code in OVERLOAD_STATUS)
        try:
            return parse_reply(bounded_json.loads(text))
        except ValueError as e:  # not JSON, over a JSON limit, or not a chat completion
            excerpt = self._redact(text[:BODY_EXCERPT_CHARS])
            return _Failure(f"malformed reply: {e}: {excerpt}", True, resp.status_code, excerpt)


async def _read_limited(resp: httpx.Response, limit: int) -> bytes | None:
    """The (decoded) body of a streamed response, or None as soon as it passes `limit` bytes (the declared
    Content-Length is checked first, so an honest oversized reply is not read at all)."""
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
