"""One interface for every LLM engine (hf in-process, OpenAI-compatible servers, vLLM offline).

Domain code builds `ChatRequest`s and reads `Completion`s; which engine answers is configuration
(a model spec string, see `linksyn.common.llm.load_llm`). Generation is always batched: a backend receives the
whole batch and decides how to run it (one padded forward pass, hundreds of concurrent HTTP requests, ...).
`generate` returns when every request of the batch is done; `submit` hands back one future per request, resolved as
soon as that request is done, so a caller can act on each reply (and send follow-up requests) while the rest of the
batch is still being generated.
"""

from __future__ import annotations

import abc
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings of one request."""

    temperature: float = 0.0
    """0 = greedy."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    max_tokens: int = 256
    """Most completion tokens."""
    seed: int | None = None
    """Sampling seed where the engine supports one."""
    stop: tuple[str, ...] = ()
    """Stop strings."""

    def as_kwargs(self) -> dict[str, Any]:
        """The settings under the names the OpenAI API, llama-cpp-python and vllm.SamplingParams share (seed and
        stop only when set)."""
        out: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        if self.seed is not None:
            out["seed"] = self.seed
        if self.stop:
            out["stop"] = list(self.stop)
        return out


@dataclass(frozen=True)
class ChatRequest:
    """One chat conversation to complete."""

    messages: tuple[dict[str, str], ...]
    """OpenAI-style messages: ({"role": "system"|"user"|"assistant", "content": str}, ...)."""
    params: SamplingParams = SamplingParams()
    """Decoding settings."""
    json_schema: dict[str, Any] | None = None
    """If set, the reply must be a JSON value matching this schema (constrained where the engine can)."""
    request_id: str = ""
    """Caller's id, echoed in logs and errors."""


@dataclass
class Completion:
    """The reply to one request. A failed request has `error` set and the batch's other replies stand."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    """'stop', 'length', or '' when failed."""
    error: str | None = None
    """Why this request failed (timeout, HTTP 500 after retries...), None on success."""
    retryable: bool = True
    """Whether trying the same request again could succeed."""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class TokenUsage:
    """Running token totals of a backend (thread-safe: requests finish on engine threads)."""

    requests: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, c: Completion) -> None:
        with self._lock:
            self.requests += 1
            if c.error is not None:
                self.failed += 1
            self.prompt_tokens += c.prompt_tokens
            self.completion_tokens += c.completion_tokens

    def snapshot(self) -> "TokenUsage":
        """A consistent copy of the totals now."""
        with self._lock:
            return TokenUsage(self.requests, self.failed, self.prompt_tokens, self.completion_tokens)


class LLM(abc.ABC):
    """A chat model behind some engine."""

    model_name: str
    """Name recorded in lineage (e.g. 'hf:SmolLM2-135M-Instruct'); prices are keyed by it."""
    service: str = ""
    """The service that owns this backend (labels its metrics); set by load_llm."""

    def __init__(self) -> None:
        self.usage = TokenUsage()

    @abc.abstractmethod
    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Complete every request; one Completion per request, in order. Raises only if the engine is unusable."""

    def submit(self, requests: Sequence[ChatRequest]) -> list[Future[Completion]]:
        """Start completing every request; one future per request, in order, each resolved as soon as its own
        request is done (an unusable engine sets the exception of every future not resolved yet).

        This default runs `generate` on a thread of its own, so the batch's futures resolve together; engines that
        finish requests one by one (the openai backend, hf) resolve each as it finishes."""
        futures: list[Future[Completion]] = [Future() for _ in requests]
        batch = list(requests)

        def run() -> None:
            try:
                for f, c in zip(futures, self.generate(batch)):
                    f.set_result(c)
            except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the futures
                for f in futures:
                    if not f.done():
                        f.set_exception(e)

        threading.Thread(target=run, name=f"llm-submit-{self.model_name}", daemon=True).start()
        return futures

    def close(self) -> None:
        """Release the engine (threads, sessions, GPU memory)."""
