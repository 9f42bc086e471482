"""Options of every LLM backend (a section that the extractor and synth configs embed next to their model spec).

One class for all engines: each backend reads the fields that concern it and ignores the rest, so switching a
stage from `embedded` to `openai:...` or `vllm:...` is a change of the spec string alone.
"""

from __future__ import annotations

from typing import Literal

from linksyn.common.config import RetryConfig, Section
from pydantic import Field


class FlowConfig(Section):
    """How an endpoint's concurrency limit adapts and when its circuit opens (linksyn.common.llm.flow)."""

    decrease_factor: float = Field(default=0.7, gt=0, lt=1)
    """The limit is multiplied by this on an overload (429/503), a timeout or a server error; at most once per round
    of requests (a cut answers every request already in flight)."""
    latency_tolerance: float = Field(default=3.0, ge=0)
    """The limit is cut (by latency_decrease) when a round's median seconds per completion token exceeds this many
    times the lowest round median of the last 32 rounds (the server is queueing); 0 = latency is not watched."""
    latency_decrease: float = Field(default=0.9, gt=0, lt=1)
    """Factor of a latency cut (gentler than an overload cut: latency is a noisier signal)."""
    overload_timeout_s: float = Field(default=600.0, gt=0)
    """Adaptive mode: how long one request may keep being turned away (429/503) before a 429 counts as a failed
    attempt like any error (so an endpoint that only ever answers 429 cannot hold a batch forever)."""
    circuit_failures: int = Field(default=5, ge=1)
    """Failures in a row (timeouts, connection errors, 5xx other than 503, malformed replies) that open an endpoint's
    circuit: no request is sent to it until it is probed."""
    circuit_open_s: float = Field(default=5.0, gt=0)
    """How long a circuit stays open before one probe request is let through; each failed probe doubles it."""
    circuit_max_open_s: float = Field(default=60.0, gt=0)
    """Longest open period between probes."""
    circuit_wait_s: float = Field(default=30.0, gt=0)
    """How long a request waits while every endpoint's circuit is open before that attempt fails (it is then retried
    with backoff like any failed attempt, and the record is dead-lettered once its attempts are spent)."""


class LLMConfig(Section):
    """How a backend talks to its engine: timeouts, concurrency, retries, batching, device."""

    # --- openai: HTTP to an OpenAI-compatible server ---
    request_timeout_s: float = Field(default=120.0, gt=0)
    """Longest time one HTTP attempt may take, start to last byte; past it the attempt counts as a timeout."""
    connect_timeout_s: float = Field(default=10.0, gt=0)
    """Longest time to open a TCP connection to the server."""
    max_concurrency: int = Field(default=64, ge=1)
    """Most requests in flight at once against one endpoint (the ceiling of the adaptive limit, the limit itself in
    'fixed' mode; also the HTTP connection pool size per endpoint)."""
    concurrency: Literal["adaptive", "fixed"] = "adaptive"
    """'adaptive': each endpoint's limit moves between min_concurrency and max_concurrency (grows while replies come
    back healthy, shrinks on 429/503, errors and rising latency; see `flow`), a 429/503 pauses the endpoint until its
    Retry-After and the request waits its turn again without spending an attempt (up to flow.overload_timeout_s).
    'fixed': max_concurrency requests in flight, always; a 429 is a failed attempt like a 500 (retried with backoff,
    Retry-After honoured for that request)."""
    min_concurrency: int = Field(default=1, ge=1)
    """Floor of the adaptive limit per endpoint."""
    initial_concurrency: int = Field(default=4, ge=1)
    """Adaptive limit per endpoint at start (slow start doubles it every round of healthy replies)."""
    flow: FlowConfig = FlowConfig()
    """Tuning of adaptive concurrency and of the circuit breaker (both modes have the breaker)."""
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
