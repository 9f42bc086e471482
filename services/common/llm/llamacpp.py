"""The `llamacpp` backend: llama.cpp in-process through llama-cpp-python, on a GGUF file (CPU).

llama-cpp-python's high-level API decodes one conversation at a time, so a batch runs request by request; the
JSON schema becomes a llama.cpp grammar (`response_format={"type": "json_object", "schema": ...}`).
"""

from __future__ import annotations

import atexit
import logging
import threading
from pathlib import Path
from typing import Any, Sequence

from linksyn.common.llm.base import LLM, ChatRequest, Completion
from linksyn.common.llm.config import LLMConfig
from linksyn.common.llm.openai import chat_fields
from linksyn.common.llm.spec import EMBEDDED_GGUF, EMBEDDED_MODEL_NAME

log = logging.getLogger(__name__)

INSTALL_HINT = "the 'llamacpp' backend needs llama-cpp-python: pip install llama-cpp-python"

_engines: dict[tuple, Any] = {}
_engines_lock = threading.Lock()


@atexit.register
def _close_engines() -> None:
    # Free llama.cpp contexts before interpreter teardown, when their __del__ would find its C bindings gone.
    with _engines_lock:
        for engine, _ in _engines.values():
            engine.close()
        _engines.clear()


def chat_kwargs(request: ChatRequest) -> dict[str, Any]:
    """create_chat_completion keyword arguments of one request."""
    kwargs = chat_fields(request)
    if request.json_schema is not None:
        kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
    return kwargs


class LlamaCppLLM(LLM):
    """llama.cpp engine (one per GGUF and thread count per process)."""

    def __init__(self, gguf: Path, config: LLMConfig | None = None) -> None:
        super().__init__()
        self.config = config or LLMConfig()
        try:
            import llama_cpp
        except ImportError as e:
            raise ImportError(f"{INSTALL_HINT} ({e})") from e
        key = (str(gguf), self.config.n_ctx, self.config.threads)
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = llama_cpp.Llama(
                    model_path=str(gguf), n_ctx=self.config.n_ctx, n_threads=self.config.threads, verbose=False
                )
                _engines[key] = (engine, threading.Lock())
            self._engine, self._lock = _engines[key]
        self.model_name = f"llamacpp:{EMBEDDED_MODEL_NAME if gguf.name == EMBEDDED_GGUF else gguf.name}"

    def __repr__(self) -> str:
        return f"LlamaCppLLM(model_name={self.model_name!r})"

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        results = []
        with self._lock:  # one llama.cpp context: one conversation at a time
            for r in requests:
                results.append(self._one(r))
        for c in results:
            self.usage.add(c)
        return results

    def _one(self, request: ChatRequest) -> Completion:
        try:
            out = self._engine.create_chat_completion(**chat_kwargs(request))
        except ValueError as e:  # e.g. prompt longer than the context window
            return Completion(error=f"request {request.request_id!r}: {e}", retryable=False)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Completion(
            text=choice["message"]["content"] or "",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=str(choice.get("finish_reason") or ""),
            meta={"engine": "llamacpp"},
        )
