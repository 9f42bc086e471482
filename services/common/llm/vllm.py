"""The `vllm` backend: vLLM's in-process offline engine (`vllm.LLM.chat`), for GPU pods.

vLLM is imported only when this backend is built (it is a GPU-only, heavy dependency). Structured output follows
vLLM's documented API: `SamplingParams(structured_outputs=StructuredOutputsParams(json=schema))` (vLLM >= 0.11;
the older `guided_decoding=GuidedDecodingParams(json=schema)`, removed in 0.12, is used when that is what exists).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from linksyn.common.llm.base import LLM, ChatRequest, Completion
from linksyn.common.llm.config import LLMConfig

log = logging.getLogger(__name__)

INSTALL_HINT = "the 'vllm' backend needs the vllm package on a CUDA machine: pip install vllm"


def import_vllm() -> Any:
    """The vllm module, or an ImportError that says what to install."""
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return vllm


def structured_output_kwargs(schema: dict[str, Any] | None, sampling_params_module: Any) -> dict[str, Any]:
    """The SamplingParams keyword that constrains output to `schema`, for the installed vLLM's API."""
    if schema is None:
        return {}
    structured = getattr(sampling_params_module, "StructuredOutputsParams", None)
    if structured is not None:
        return {"structured_outputs": structured(json=schema)}
    guided = getattr(sampling_params_module, "GuidedDecodingParams", None)
    if guided is not None:
        return {"guided_decoding": guided(json=schema)}
    raise ImportError("this vllm has neither StructuredOutputsParams nor GuidedDecodingParams; upgrade vllm")


def completion_from_output(output: Any) -> Completion:
    """Our Completion from one vllm RequestOutput."""
    first = output.outputs[0]
    return Completion(
        text=first.text,
        prompt_tokens=len(output.prompt_token_ids or ()),
        completion_tokens=len(first.token_ids or ()),
        finish_reason=str(first.finish_reason or ""),
        meta={"engine": "vllm"},
    )


class VLLMLLM(LLM):
    """vLLM offline engine (one per process; it owns the GPUs it is given)."""

    def __init__(self, model: str, config: LLMConfig | None = None) -> None:
        super().__init__()
        self.config = config or LLMConfig()
        vllm = import_vllm()
        import vllm.sampling_params as sp

        self._vllm = vllm
        self._sp = sp
        c = self.config
        from linksyn.common.llm.spec import resolve_vllm_model

        kwargs: dict[str, Any] = {
            "model": resolve_vllm_model(model, f"vllm:{model}", c.allow_download),
            "tensor_parallel_size": c.tensor_parallel_size,
            "gpu_memory_utilization": c.gpu_memory_utilization,
        }
        if c.max_model_len is not None:
            kwargs["max_model_len"] = c.max_model_len
        if c.dtype != "auto":
            kwargs["dtype"] = c.dtype
        self._engine = vllm.LLM(**kwargs)
        self.model_name = f"vllm:{model}"

    def __repr__(self) -> str:
        return f"VLLMLLM(model_name={self.model_name!r})"

    def sampling_params(self, request: ChatRequest) -> Any:
        """The vllm.SamplingParams of one request."""
        return self._vllm.SamplingParams(
            **request.params.as_kwargs(), **structured_output_kwargs(request.json_schema, self._sp)
        )

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        if not requests:
            return []
        outputs = self._engine.chat(
            [list(r.messages) for r in requests],
            sampling_params=[self.sampling_params(r) for r in requests],
            use_tqdm=False,
        )
        results = [completion_from_output(o) for o in outputs]
        for c in results:
            self.usage.add(c)
        return results

    def close(self) -> None:
        # vLLM frees its GPU memory when the engine is garbage-collected.
        self._engine = None
