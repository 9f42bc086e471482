"""Continual pre-training with a causal LM loss: AdamW, warmup + cosine, gradient accumulation, clipping, bf16 on
CUDA, checkpoints with exact resume, DDP under torchrun.

`TrainingRun` takes a model and tokenizer objects (so tests can hand it a tiny model) and a `PackedStream`
factory; `load_trainable(spec)` builds the model and tokenizer from a model spec for the CLI and the service.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from linksyn.trainer.config import TrainConfig, TrainerConfig
from linksyn.trainer.data import PackedStream, StreamState, corpus_files, shard_files

CKPT_PREFIX = "step-"


@dataclass
class StepLog:
    step: int
    loss: float
    lr: float
    tokens: int
    tokens_per_s: float
    grad_norm: float


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    """Loss of every step run by this call (resumed runs only list the steps after the resume point)."""
    final_dir: Path | None = None
    """save_pretrained output (loadable as hf:PATH) when the run finished all steps."""
    tokens: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


def load_trainable(spec: str, device: torch.device | str = "cpu", allow_download: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) in float32 from a model spec ('embedded', 'hf:PATH_OR_ID', 'hf:FILE.gguf'). A hub id is
    read from the local Hugging Face cache only, unless `allow_download` (trainer.allow_download)."""
    from linksyn.common.llm.spec import (
        EMBEDDED,
        ModelSpecError,
        parse_spec,
        resolve_hf_source,
    )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ms = parse_spec(spec)
    if ms.scheme not in (EMBEDDED, "hf"):
        raise ModelSpecError(f"model spec {spec!r}: training needs weights in-process ('embedded' or 'hf:...'), not {ms.scheme}")
    from linksyn.common.llm.gguf_cache import plain_source

    src = plain_source(resolve_hf_source(EMBEDDED if ms.scheme == EMBEDDED else ms.target, spec))
    kw: dict[str, Any] = {"gguf_file": src.gguf_file} if src.gguf_file else {}
    kw["local_files_only"] = src.local or not allow_download
    try:
        tok = AutoTokenizer.from_pretrained(src.path, **kw)
        model = AutoModelForCausalLM.from_pretrained(src.path, dtype=torch.float32, **kw)
    except OSError as e:
        hint = "" if src.local or allow_download else (
            " (a hub id is only read from the local HF cache unless trainer.allow_download is on)")
        raise ModelSpecError(f"model spec {spec!r}: could not load {src.path!r}{hint}: {e}") from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model.to(device), tok


def auto_device(choice: str = "auto") -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """Linear warmup to 1, then cosine to min_lr_ratio at max_steps (multiplier of the peak lr)."""

    def f(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, cfg.max_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def hf_tokenize(tokenizer: Any) -> Callable[[list[str]], list[list[int]]]:
    def tokenize(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

    return tokenize


class TrainingRun:
    """One run: trains `max_steps` optimizer steps, checkpointing into run_dir, resuming from its last checkpoint."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        cfg: TrainerConfig,
        run_dir: str | Path,
        data: str | Path,
        device: torch.device | None = None,
        run_id: str | None = None,
        on_log: Callable[[StepLog], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.tcfg = cfg.train
        self.run_dir = Path(run_dir)
        self.run_id = run_id or self.run_dir.name
        self.device = device or auto_device(cfg.device)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.qa_files = shard_files(data)
        self.general_files = corpus_files(cfg.data.general_corpus)
        self.on_log = on_log
        eos = tokenizer.eos_token_id
        if eos is None:
            raise ValueError("the tokenizer has no EOS token; packing needs one as the document separator")
        self.eos_id = int(eos)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.ddp_model = self.model
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.use_bf16 = self.tcfg.precision == "bf16" or (self.tcfg.precision == "auto" and self.device.type == "cuda")
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.tcfg.lr, weight_decay=self.tcfg.weight_decay, betas=(0.9, 0.95)
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(self.tcfg))
        self.step = 0
        self.stream_state = StreamState()

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def checkpoints(self) -> list[Path]:
        return self.checkpoints_in(self.run_dir)

    @staticmethod
    def checkpoints_in(run_dir: Path) -> list[Path]:
        """Complete checkpoints of a run directory, oldest first."""
        if not run_dir.exists():
            return []
        return sorted(p for p in run_dir.glob(f"{CKPT_PREFIX}*") if p.is_dir() and (p / "state.pt").exists())

    def save_checkpoint(self) -> Path:
        """Atomically write step-NNNNNNNN/ (model, optimizer, scheduler, RNG, data position); keep the last K."""
        if self.rank != 0:
            return self.run_dir
        final = self.run_dir / f"{CKPT_PREFIX}{self.step:08d}"
        tmp = self.run_dir / f".{final.name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "step": self.step,
                "stream": self.stream_state.to_json(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
            tmp / "state.pt",
        )
        (tmp / "meta.json").write_text(json.dumps({"step": self.step, "run_id": self.run_id}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in self.checkpoints()[: -self.tcfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def resume(self) -> bool:
        """Load the newest checkpoint of run_dir, if any. Returns whether one was loaded."""
        ckpts = self.checkpoints()
        if not ckpts:
            return False
        state = torch.load(ckpts[-1] / "state.pt", map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.stream_state = StreamState.from_json(state["stream"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return True

    # -- training ------------------------------------------------------------------------------------------------
    def _batches(self, stream: Iterator[np.ndarray]) -> Iterator[torch.Tensor]:
        """Micro-batches of this rank: every world-th micro-batch of the shared deterministic stream."""
        mb = self.tcfg.micro_batch
        while True:
            # Every rank reads the whole group, so the stream state is the same on all ranks at step boundaries.
            group = [[next(stream) for _ in range(mb)] for _ in range(self.world)]
            yield torch.from_numpy(np.stack(group[self.rank]))

    def run(self, stop: threading.Event | None = None, max_steps: int | None = None) -> RunResult:
        """Train until max_steps (default cfg.train.max_steps) or `stop`; resumes from the last checkpoint."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.resume()
        target = max_steps if max_steps is not None else self.tcfg.max_steps
        stream = PackedStream(self.qa_files, hf_tokenize(self.tokenizer), self.eos_id, self.cfg.data,
                              self.general_files, state=self.stream_state)
        self.stream_state = stream.state
        batches = self._batches(iter(stream))
        log_path = self.run_dir / "train_log.jsonl"
        result = RunResult(self.run_dir, self.step)
        self.model.train()
        t_log = time.perf_counter()
        tokens_since_log = 0
        t0 = time.perf_counter()
        while self.step < target:
            if stop is not None and stop.is_set():
                result.stopped_early = True
                break
            loss_sum = 0.0
            for _ in range(self.tcfg.grad_accum):
                x = next(batches).to(self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
                    out = self.ddp_model(input_ids=x, labels=x)
                loss = out.loss / self.tcfg.grad_accum
                loss.backward()
                loss_sum += float(loss.detach())
                tokens_since_log += x.numel() * self.world
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tcfg.grad_clip))
            lr = self.scheduler.get_last_lr()[0]
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            result.losses.append(loss_sum)
            if self.step % self.tcfg.log_every == 0 or self.step == target:
                now = time.perf_counter()
                log = StepLog(self.step, loss_sum, lr, tokens_since_log, tokens_since_log / max(now - t_log, 1e-9), grad_norm)
                result.tokens += tokens_since_log
                if self.rank == 0:
                    with log_path.open("a") as f:
                        f.write(json.dumps(log.__dict__) + "\n")
                if self.on_log:
                    self.on_log(log)
                t_log, tokens_since_log = now, 0
            if self.step % self.tcfg.checkpoint_every == 0 and self.step < target:
                self.save_checkpoint()
        result.tokens += tokens_since_log
        result.steps = self.step
        result.seconds = time.perf_counter() - t0
        self.save_checkpoint()
        if self.step >= target and self.rank == 0:
            final = self.run_dir / "final"
            self.model.save_pretrained(final)
            self.tokenizer.save_pretrained(final)
            result.final_dir = final
        return result
