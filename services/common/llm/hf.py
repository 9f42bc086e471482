"""The `hf` backend: transformers in-process, batched decoding with left padding, CPU or CUDA.

The decode loop is our own (not `model.generate`) so that every request of a padded batch keeps its own sampling
settings, stop strings, token budget and JSON-schema constraint; finished rows leave the batch (and the KV cache)
at once. Schema-constrained decoding uses llguidance: before each step, every constrained row gets a token bitmask
from its matcher, so even SmolLM2-135M can only emit JSON that matches the schema.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from linksyn.common.llm.base import LLM, ChatRequest, Completion
from linksyn.common.llm.config import LLMConfig
from linksyn.common.llm.spec import EMBEDDED_GGUF, EMBEDDED_MODEL_NAME, HFSource, ModelSpecError

log = logging.getLogger(__name__)

# Compact JSON (no free whitespace) so a small model cannot pad a reply with endless spaces and newlines; a
# schema may still override these through its "x-guidance" key.
_JSON_COMPILE_DEFAULTS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


@dataclass
class LoadedModel:
    """A model and its tokenizers, shared by every HFLLM of the process that asks for the same weights."""

    model: Any
    tokenizer: Any
    device: Any
    eos_ids: frozenset[int]
    context_len: int
    ll_tokenizer: Any = None
    """llguidance's view of the tokenizer, built on first schema use (about a second)."""
    grammars: dict[str, str] = field(default_factory=dict)
    """Compiled grammar per schema (JSON text, sorted keys)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    """One batch at a time per model: the forward pass already uses every core."""


_models: dict[tuple, LoadedModel] = {}
_models_lock = threading.Lock()


def _torch_device_and_dtype(config: LLMConfig):
    import torch

    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {config.device!r} requested but torch sees no CUDA device")
    dtype_name = config.dtype
    if dtype_name == "auto":
        dtype_name = "bfloat16" if dev.type == "cuda" else "float32"
    return dev, getattr(torch, dtype_name)


def load_model(source: HFSource, config: LLMConfig, spec: str) -> LoadedModel:
    """Load (once per process) the weights and tokenizer that `source` names."""
    dev, dtype = _torch_device_and_dtype(config)
    key = (source.path, source.gguf_file, str(dev), str(dtype))
    with _models_lock:
        cached = _models.get(key)
        if cached is not None:
            return cached
        from linksyn.common.llm.gguf_cache import plain_source

        source = plain_source(source)  # a GGUF is converted once and cached on disk (seconds instead of ~minute)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if config.threads:
            torch.set_num_threads(config.threads)
        local_only = source.local or not config.allow_download
        kwargs: dict[str, Any] = {"local_files_only": local_only}
        if source.gguf_file:
            kwargs["gguf_file"] = source.gguf_file
        started = time.monotonic()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source.path, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source.path, dtype=dtype, **kwargs)
        except OSError as e:
            where = f"{source.path}/{source.gguf_file}" if source.gguf_file else source.path
            hint = "" if source.local else " (a hub id is only loaded from the local HF cache unless allow_download is on)"
            raise ModelSpecError(f"model spec {spec!r}: could not load {where!r}{hint}: {e}") from e
        model.to(dev).eval()
        eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        gen_eos = getattr(model.generation_config, "eos_token_id", None)
        eos |= set(gen_eos) if isinstance(gen_eos, (list, tuple)) else ({gen_eos} if gen_eos is not None else set())
        if not eos:
            raise ModelSpecError(f"model spec {spec!r}: the tokenizer has no end-of-sequence token")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        context_len = int(getattr(model.config, "max_position_embeddings", 0) or 4096)
        loaded = LoadedModel(model, tokenizer, dev, frozenset(eos), context_len)
        _models[key] = loaded
        log.info("loaded %s on %s (%s) in %.1fs", source.gguf_file or source.path, dev, dtype, time.monotonic() - started)
        return loaded


def grammar_for(loaded: LoadedModel, schema: dict[str, Any]) -> str:
    """llguidance grammar of a JSON schema, cached per model; raises ValueError naming the schema problem."""
    import llguidance

    key = json.dumps(schema, sort_keys=True)
    grammar = loaded.grammars.get(key)
    if grammar is None:
        if loaded.ll_tokenizer is None:
            import llguidance.hf

            loaded.ll_tokenizer = llguidance.hf.from_tokenizer(loaded.tokenizer, eos_token=sorted(loaded.eos_ids))
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=_JSON_COMPILE_DEFAULTS)
        err = llguidance.LLMatcher.validate_grammar(grammar, loaded.ll_tokenizer)
        if err:
            raise ValueError(f"JSON schema not usable for constrained decoding: {err}")
        loaded.grammars[key] = grammar
    return grammar


def pick_tokens(logits, temperatures, top_ps, generators):
    """Next token per row: argmax where temperature is 0, else nucleus sampling with the row's generator.

    logits: (rows, vocab) float tensor, already masked; temperatures/top_ps: lists; generators: list of
    torch.Generator or None (None = torch's global RNG)."""
    import torch

    out = logits.argmax(dim=-1)
    for i, t in enumerate(temperatures):
        if t <= 0:
            continue
        probs = torch.softmax(logits[i].float() / t, dim=-1)
        if top_ps[i] < 1.0:
            sorted_p, order = probs.sort(descending=True)
            keep = sorted_p.cumsum(0) - sorted_p < top_ps[i]  # always keeps the top token
            probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_p[keep])
        out[i] = torch.multinomial(probs, 1, generator=generators[i])[0]
    return out


def bitmask_to_bool(bitmask, vocab: int):
    """Unpack llguidance's int32 bitmask (rows, ceil(V/32)) into a bool (rows, vocab) 'allowed' tensor."""
    import torch

    shifts = torch.arange(32, dtype=torch.int32)
    bits = (bitmask.unsqueeze(-1) >> shifts) & 1
    allowed = bits.view(bitmask.shape[0], -1).bool()
    if allowed.shape[1] >= vocab:
        return allowed[:, :vocab]
    pad = torch.zeros(bitmask.shape[0], vocab - allowed.shape[1], dtype=torch.bool)
    return torch.cat([allowed, pad], dim=1)


@dataclass
class _Row:
    """Decoding state of one request."""

    index: int
    """Position in the caller's batch."""
    request: ChatRequest
    prompt_tokens: int
    budget: int
    tokens: list[int] = field(default_factory=list)
    matcher: Any = None
    generator: Any = None
    finish: str = ""
    text: str | None = None
    error: str | None = None
    retryable: bool = True


class HFLLM(LLM):
    """transformers in-process engine."""

    def __init__(self, source: HFSource, config: LLMConfig | None = None, spec: str = "") -> None:
        super().__init__()
        self.config = config or LLMConfig()
        self.spec = spec or f"hf:{source.path}"
        self._loaded = load_model(source, self.config, self.spec)
        name = EMBEDDED_MODEL_NAME if source.gguf_file == EMBEDDED_GGUF else (source.gguf_file or source.path)
        self.model_name = f"hf:{name}"

    def __repr__(self) -> str:
        return f"HFLLM(model_name={self.model_name!r}, device={str(self._loaded.device)!r})"

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        results: list[Completion | None] = [None] * len(requests)

        def keep(i: int, c: Completion) -> None:
            results[i] = c

        self._run(requests, keep)
        return results  # type: ignore[return-value]

    def submit(self, requests: Sequence[ChatRequest]) -> list[Future[Completion]]:
        """Each future resolves when its own row finishes decoding (rows leave a padded batch one by one)."""
        futures: list[Future[Completion]] = [Future() for _ in requests]
        batch = list(requests)

        def run() -> None:
            try:
                self._run(batch, lambda i, c: futures[i].set_result(c))
            except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the futures
                for f in futures:
                    if not f.done():
                        f.set_exception(e)

        threading.Thread(target=run, name="llm-hf-submit", daemon=True).start()
        return futures

    def _run(self, requests: Sequence[ChatRequest], on_done: Callable[[int, Completion], None]) -> None:
        """Decode every request, calling on_done(index, completion) as each one finishes."""
        loaded = self._loaded
        tok = loaded.tokenizer
        prompts = [
            tok.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False) for r in requests
        ]
        ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]

        def done(i: int, c: Completion) -> None:
            self.usage.add(c)
            on_done(i, c)

        # Similar lengths share a batch: less padding, and rows tend to finish together.
        order = sorted(range(len(requests)), key=lambda i: len(ids[i]))
        bs = self.config.batch_size
        for start in range(0, len(order), bs):
            chunk = order[start : start + bs]
            # One padded batch at a time per model (the forward pass already uses every core); taken per batch, so
            # another caller's requests (a follow-up round) get their turn between this caller's batches.
            with loaded.lock:
                self._generate_chunk([(i, requests[i], ids[i]) for i in chunk], done)

    def _generate_chunk(
        self, items: list[tuple[int, ChatRequest, list[int]]], on_done: Callable[[int, Completion], None]
    ) -> None:
        import llguidance
        import torch

        loaded = self._loaded
        rows: list[_Row] = []
        for index, req, prompt_ids in items:
            budget = min(req.params.max_tokens, loaded.context_len - len(prompt_ids))
            row = _Row(index, req, len(prompt_ids), budget)
            if budget <= 0:
                row.error = (
                    f"request {req.request_id!r}: prompt of {len(prompt_ids)} tokens leaves no room in the "
                    f"{loaded.context_len}-token context"
                )
                row.retryable = False
            elif req.json_schema is not None:
                try:
                    grammar = grammar_for(loaded, req.json_schema)
                except ValueError as e:
                    row.error, row.retryable = f"request {req.request_id!r}: {e}", False
                else:
                    row.matcher = llguidance.LLMatcher(loaded.ll_tokenizer, grammar, log_level=0)
            if req.params.seed is not None and req.params.temperature > 0:
                row.generator = torch.Generator().manual_seed(req.params.seed)
            rows.append(row)

        def finish(r: _Row) -> None:
            on_done(r.index, self._completion(r))

        for r in rows:
            if r.error is not None:
                finish(r)
        live = [r for r in rows if r.error is None]
        if live:
            finished: set[int] = set()

            def finish_live(r: _Row) -> None:
                finished.add(r.index)
                finish(r)

            try:
                self._decode(live, {r.index: ids for r, (_, _, ids) in zip(rows, items)}, finish_live)
            except RuntimeError as e:  # e.g. CUDA out of memory: this chunk fails, the engine stays usable
                log.warning("hf batch of %d failed: %s", len(live), e)
                for r in live:
                    if r.index not in finished:
                        r.error = f"request {r.request.request_id!r}: engine error: {e}"
                        finish(r)

    def _completion(self, r: _Row) -> Completion:
        loaded = self._loaded
        if r.error is not None:
            return Completion(prompt_tokens=r.prompt_tokens, completion_tokens=len(r.tokens), error=r.error,
                              retryable=r.retryable)
        text = r.text
        if text is None:
            text = loaded.tokenizer.decode([t for t in r.tokens if t not in loaded.eos_ids], skip_special_tokens=True)
        return Completion(text=text, prompt_tokens=r.prompt_tokens, completion_tokens=len(r.tokens),
                          finish_reason=r.finish, meta={"engine": "hf"})

    def _step(self, r: _Row, t: int) -> bool:
        """Take token t for row r; False once the row is finished (stop, length, grammar error)."""
        loaded = self._loaded
        r.tokens.append(t)
        if r.matcher is not None and not r.matcher.consume_token(t):
            r.error = f"request {r.request.request_id!r}: grammar rejected token {t}: {r.matcher.get_error()}"
            return False
        if t in loaded.eos_ids or (r.matcher is not None and r.matcher.is_stopped()):
            r.finish = "stop"
            return False
        if r.request.params.stop:
            text = loaded.tokenizer.decode(r.tokens, skip_special_tokens=True)
            cut = min((text.find(s) for s in r.request.params.stop if s in text), default=-1)
            if cut >= 0:
                r.text, r.finish = text[:cut], "stop"
                return False
        if len(r.tokens) >= r.budget:
            r.finish = "length"
            return False
        return True

    def _decode(
        self, rows: list[_Row], prompt_ids: dict[int, list[int]], on_finish: Callable[[_Row], None]
    ) -> None:
        """Run the padded batch to completion, filling each row's tokens/finish/text/error and calling
        on_finish(row) as soon as the row is done (the others go on decoding)."""
        import torch
        from llguidance.torch import fill_next_token_bitmask

        loaded = self._loaded
        model, dev, tok = loaded.model, loaded.device, loaded.tokenizer
        pad_id = tok.pad_token_id
        width = max(len(prompt_ids[r.index]) for r in rows)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for j, r in enumerate(rows):
            p = prompt_ids[r.index]
            input_ids[j, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            attention[j, width - len(p) :] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        input_ids, attention, positions = input_ids.to(dev), attention.to(dev), positions.to(dev)
        active = list(rows)
        cache = None
        ll_vocab = loaded.ll_tokenizer.vocab_size if loaded.ll_tokenizer is not None else 0
        bitmask = None
        with torch.inference_mode():
            while active:
                out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                            past_key_values=cache, use_cache=True, logits_to_keep=1)
                cache = out.past_key_values
                logits = out.logits[:, -1, :].float()
                constrained = [j for j, r in enumerate(active) if r.matcher is not None]
                if constrained:
                    if bitmask is None or bitmask.shape[0] < len(active):
                        bitmask = torch.full((len(rows), (ll_vocab + 31) // 32), -1, dtype=torch.int32)
                    for j in constrained:
                        fill_next_token_bitmask(active[j].matcher, bitmask, j)
                    idx = torch.tensor(constrained, dtype=torch.long)
                    allowed = bitmask_to_bool(bitmask[idx], logits.shape[1]).to(logits.device)
                    sub = logits[idx.to(logits.device)]
                    logits[idx.to(logits.device)] = sub.masked_fill(~allowed, float("-inf"))
                picked = pick_tokens(
                    logits,
                    [r.request.params.temperature for r in active],
                    [r.request.params.top_p for r in active],
                    [r.generator for r in active],
                ).tolist()
                keep: list[int] = []
                for j, (r, t) in enumerate(zip(active, picked)):
                    if self._step(r, t):
                        keep.append(j)
                    else:
                        on_finish(r)
                if not keep:
                    break
                if len(keep) < len(active):
                    sel = torch.tensor(keep, dtype=torch.long, device=dev)
                    cache.batch_select_indices(sel)
                    attention, positions = attention[sel], positions[sel]
                    active = [active[j] for j in keep]
                    picked = [picked[j] for j in keep]
                input_ids = torch.tensor(picked, dtype=torch.long, device=dev).unsqueeze(1)
                attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=1)
                positions = positions[:, -1:] + 1
