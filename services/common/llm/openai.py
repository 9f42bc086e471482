"""The `openai` backend: any OpenAI-compatible chat-completions server (vllm serve, SGLang, llama.cpp, DeepSeek...).

`generate()` is synchronous for the caller but sends the whole batch concurrently (up to `max_concurrency` requests
in flight) from an event loop that runs on the backend's own thread. Transient failures (429, 5xx, timeouts,
connection errors, malformed replies) are retried with exponential backoff and jitter; a request that still fails
comes back with `error` set while the rest of the batch stands. A reply body over `max_reply_bytes` is not read
further; its request fails without retries. The API key is read from the environment variable
the config names and only ever placed in the Authorization header.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlsplit

import httpx
from linksyn.common import bounded_json
from linksyn.common.config import redact_url_passwords
from linksyn.common.llm.base import LLM, ChatRequest, Completion
from linksyn.common.llm.config import LLMConfig
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
    """The server's Retry-After header, if it sent one."""


def api_key_env_for(base_url: str, config: LLMConfig, main: ModelSpec | None = None) -> str | None:
    """The environment variable whose key goes to `base_url`: its entry in llm.api_keys, else llm.api_key_env when
    this is the stage's own model (`main` None) or shares the main model's base URL; None: no key."""
    url = base_url.rstrip("/")
    for listed, env in config.api_keys.items():
        if listed.rstrip("/") == url:
            return env
    if main is None or (main.scheme == "openai" and main.target.rstrip("/") == url):
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
    """Client of an OpenAI-compatible server."""

    def __init__(self, base_url: str, model: str, config: LLMConfig | None = None,
                 api_key_env: str | None = None) -> None:
        """`api_key_env`: the variable holding this endpoint's key (see api_key_env_for); None = no key."""
        super().__init__()
        self.config = config or LLMConfig()
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_name = f"openai:{model}"
        self.__api_key = (os.environ.get(api_key_env) or None) if api_key_env else None
        if self.__api_key:
            check_key_transport(self.base_url, self.config)
        mode = self.config.structured_output
        self._mode_index = 0 if mode == "auto" else STRUCTURED_MODES.index(mode)
        self._auto = mode == "auto"
        self._usage_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"llm-openai-{model}", daemon=True)
        self._thread.start()
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    def __repr__(self) -> str:
        url = redact_url_passwords(self.base_url)
        return f"OpenAILLM(base_url={url!r}, model={self.model!r}, api_key={'set' if self.__api_key else 'unset'})"

    @property
    def structured_mode(self) -> str:
        """How schemas are sent now ('json_schema', 'json_object' or 'none'); steps down in 'auto' mode."""
        return STRUCTURED_MODES[self._mode_index]

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        future = asyncio.run_coroutine_threadsafe(self._generate(list(requests)), self._loop)
        results = future.result()
        with self._usage_lock:
            for c in results:
                self.usage.add(c)
        return results

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._client is not None:
            asyncio.run_coroutine_threadsafe(self._client.aclose(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # --- on the loop thread ---

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            c = self.config
            headers = {"Authorization": f"Bearer {self.__api_key}"} if self.__api_key else {}
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=httpx.Timeout(c.request_timeout_s, connect=c.connect_timeout_s),
                limits=httpx.Limits(max_connections=c.max_concurrency, max_keepalive_connections=c.max_concurrency),
            )
            self._semaphore = asyncio.Semaphore(c.max_concurrency)
        return self._client

    async def _generate(self, requests: list[ChatRequest]) -> list[Completion]:
        self._http()
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    def _redact(self, text: str) -> str:
        return text.replace(self.__api_key, "***") if self.__api_key else text

    async def _one(self, request: ChatRequest) -> Completion:
        c = self.config
        attempt = 0
        failure: _Failure | None = None
        while attempt < c.retry.max_attempts:
            attempt += 1
            mode = self.structured_mode
            async with self._semaphore:
                result = await self._attempt(request, mode)
            if isinstance(result, Completion):
                result.meta.update({"engine": "openai", "attempts": attempt, "structured_output": mode})
                return result
            failure = result
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
            await asyncio.sleep(delay)
        assert failure is not None
        return Completion(
            error=f"{failure.message} (after {attempt} attempt{'s' if attempt > 1 else ''})",
            retryable=failure.retryable,
            meta={"engine": "openai", "attempts": attempt, "status": failure.status},
        )

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
            async with self._semaphore:
                result = await self._attempt(request, lower)
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

    async def _attempt(self, request: ChatRequest, mode: str) -> Completion | _Failure:
        client = self._http()
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
                            resp.headers.get("retry-after"))
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
