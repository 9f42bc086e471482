"""Options of every LLM backend (a section that the extractor and synth configs embed next to their model spec).

One class for all engines: each backend reads the fields that concern it and ignores the rest, so switching a
stage from `embedded` to `openai:...` or `vllm:...` is a change of the spec string alone.
"""

from __future__ import annotations

from typing import Literal

from linksyn.common.config import RetryConfig, Section
from pydantic import Field


class LLMConfig(Section):
    """How a backend talks to its engine: timeouts, concurrency, retries, batching, device."""

    # --- openai: HTTP to an OpenAI-compatible server ---
    request_timeout_s: float = Field(default=120.0, gt=0)
    """Longest time one HTTP attempt may take, start to last byte; past it the attempt counts as a timeout."""
    connect_timeout_s: float = Field(default=10.0, gt=0)
    """Longest time to open a TCP connection to the server."""
    max_concurrency: int = Field(default=64, ge=1)
    """Requests in flight at once against the server (also the HTTP connection pool size)."""
    retry: RetryConfig = RetryConfig(max_attempts=4, backoff_initial_s=0.5, backoff_max_s=20.0)
    """Attempts per request on transient failures (429, 5xx, timeouts, connection errors) before it fails, and the
    backoff between them (jittered +-50%, so retries do not arrive in step; a server's Retry-After wins)."""
    max_reply_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest HTTP reply body read from the server (bytes); reading stops there and the request fails, not
    retried, with "reply of more than N bytes exceeds llm.max_reply_bytes=N". A reply of max_tokens tokens is a few
    bytes per token plus the JSON envelope: raise this only for very large max_tokens."""
    api_key_env: str | None = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key of the stage's own `model` endpoint, sent as
    `Authorization: Bearer`; variable unset (or null here) = no header. A second model of the stage (the synth's
    `refiner_model`) gets it only when it is served from the same base URL; otherwise name its key in `api_keys`.
    The key itself never enters the config, logs, errors or repr."""
    api_keys: dict[str, str] = {}
    """Environment variable holding the API key of each OpenAI-compatible endpoint, by base URL as written in the
    model spec, e.g. `{"https://api.deepseek.com/v1": "DEEPSEEK_API_KEY"}`; wins over api_key_env for that URL. So
    each endpoint gets its own key and no other."""
    allow_plaintext_api_key: bool = False
    """Send an API key over plain `http://` to a host other than loopback. Off: such a model spec with a key set
    fails at load (use https://, or no key for an in-cluster server such as the chart's vLLM)."""
    structured_output: Literal["auto", "json_schema", "json_object_schema", "json_object", "none"] = "auto"
    """How a JSON schema is sent: 'json_schema' (OpenAI's response_format json_schema: vLLM, SGLang, OpenAI),
    'json_object_schema' ({"type": "json_object", "schema": ...}: llama-cpp-python's server), 'json_object' (JSON mode,
    schema unenforced), 'none' (prompt only). 'auto' starts with json_schema and steps down this list, for the rest of
    the process, when the server rejects a form."""

    # --- hf / llamacpp: in-process engines ---
    batch_size: int = Field(default=16, ge=1)
    """Requests decoded together in one padded batch by the in-process engines."""
    device: str = "auto"
    """Torch device for `hf`: 'cpu', 'cuda', 'cuda:1', or 'auto' (CUDA when available, else CPU)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights dtype for `hf`; 'auto' = float32 on CPU, bfloat16 on CUDA."""
    threads: int | None = Field(default=None, ge=1)
    """CPU threads for the in-process engines (torch intra-op threads, llama.cpp n_threads); None = engine default."""
    allow_download: bool = False
    """Let `hf:ORG/NAME` and `vllm:ORG/NAME` fetch a model from the Hugging Face Hub when it is not already in the
    local cache. Off by default: the embedded pipeline must never touch the network."""
    n_ctx: int = Field(default=4096, ge=256)
    """Context window (prompt + completion tokens) of the llama.cpp engine."""

    # --- vllm: the in-process offline engine ---
    tensor_parallel_size: int = Field(default=1, ge=1)
    """GPUs one vLLM engine shards the model over."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Fraction of GPU memory vLLM may take for weights and KV cache."""
    max_model_len: int | None = Field(default=None, ge=1)
    """vLLM context length; None = the model's own."""
