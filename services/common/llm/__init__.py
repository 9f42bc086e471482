"""LLM backends behind one interface (`linksyn.common.llm.base.LLM`), chosen by a model spec string.

    load_llm("embedded")                                   # packaged SmolLM2-135M on the CPU default engine
    load_llm("hf:embedded") / load_llm("hf:/models/qwen")  # transformers in-process (a dir, a .gguf, a hub id)
    load_llm("llamacpp:embedded")                          # llama.cpp in-process (needs llama-cpp-python)
    load_llm("openai:http://127.0.0.1:8000/v1#smollm2")    # any OpenAI-compatible server
    load_llm("vllm:Qwen/Qwen2.5-7B-Instruct")              # vLLM offline engine (GPU)
"""

from __future__ import annotations

from typing import Any

from linksyn.common.llm.base import LLM, ChatRequest, Completion, SamplingParams, TokenUsage
from linksyn.common.llm.config import LLMConfig
from linksyn.common.llm.spec import EMBEDDED, ModelSpec, ModelSpecError, parse_spec

EMBEDDED_ENGINE = "hf"
"""Engine behind the `embedded` spec. Measured by bench/llm.py on the packaged SmolLM2 (see the module README in
the report): the choice is the faster CPU engine among those every install has."""

__all__ = [
    "LLM",
    "ChatRequest",
    "Completion",
    "SamplingParams",
    "TokenUsage",
    "LLMConfig",
    "ModelSpec",
    "ModelSpecError",
    "parse_spec",
    "load_llm",
]


def load_llm(
    spec: str, config: LLMConfig | None = None, *, main_model: str | None = None, service: str = "", **options: Any
) -> LLM:
    """Build the backend a spec string names. `options` override fields of `config` (unknown names are errors).
    `main_model`: the stage's own model spec, when `spec` is a second model of the stage (the synth's refiner):
    llm.api_key_env's key then goes to `spec` only if both are served from the same base URL. `service` labels the
    backend's metrics (the service that owns it).

    Raises ModelSpecError (a ValueError) for an unknown scheme or a model that cannot be found, naming the spec and
    what was tried; ImportError naming the package for an engine that is not installed."""
    if options:
        base = (config or LLMConfig()).model_dump()
        config = LLMConfig.model_validate(base | options)
    config = config or LLMConfig()
    ms = parse_spec(spec)
    scheme, target = ms.scheme, ms.target
    if scheme == EMBEDDED:
        scheme = EMBEDDED_ENGINE
    llm: LLM
    if scheme == "hf":
        from linksyn.common.llm.hf import HFLLM
        from linksyn.common.llm.spec import resolve_hf_source

        llm = HFLLM(resolve_hf_source(target, spec), config, spec=spec)
    elif scheme == "llamacpp":
        from linksyn.common.llm.llamacpp import LlamaCppLLM
        from linksyn.common.llm.spec import resolve_gguf_path

        llm = LlamaCppLLM(resolve_gguf_path(target, spec), config)
    elif scheme == "openai":
        from linksyn.common.llm.openai import OpenAILLM, api_key_env_for

        main = parse_spec(main_model) if main_model else None
        keys = {url: api_key_env_for(url, config, main) for url in ms.urls}
        llm = OpenAILLM(ms.urls, ms.model, config, api_key_env=keys, service=service)
    elif scheme == "vllm":
        from linksyn.common.llm.vllm import VLLMLLM

        llm = VLLMLLM(target, config)
    else:
        raise ModelSpecError(f"model spec {spec!r}: no backend for scheme {scheme!r}")  # parse_spec already checks
    llm.service = service
    return llm
