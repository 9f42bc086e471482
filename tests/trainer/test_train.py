from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.trainer.conftest import make_tiny_model
from linksyn.trainer.config import DataConfig, TrainConfig, TrainerConfig
from linksyn.trainer.train import TrainingRun, lr_lambda


def small_cfg(**train) -> TrainerConfig:
    t = dict(lr=3e-3, warmup_steps=2, max_steps=30, micro_batch=4, grad_accum=2, checkpoint_every=10)
    t.update(train)
    return TrainerConfig(data=DataConfig(seq_len=32), train=TrainConfig(**t), device="cpu")


@pytest.fixture(autouse=True)
def one_thread():
    # Bitwise-reproducible CPU matmuls between processes need the same thread count.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_lr_schedule_warms_up_then_decays_to_floor() -> None:
    f = lr_lambda(TrainConfig(warmup_steps=4, max_steps=20, min_lr_ratio=0.1))
    assert [round(f(s), 3) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == pytest.approx(1.0)
    assert all(f(s) >= f(s + 1) for s in range(4, 25))
    assert f(20) == pytest.approx(0.1) and f(30) == pytest.approx(0.1)


def test_loss_goes_down_and_run_finishes(tokenizer, tiny_model, dataset: Path, tmp_path: Path) -> None:
    run = TrainingRun(tiny_model, tokenizer, small_cfg(), tmp_path / "run", dataset, device=torch.device("cpu"))
    res = run.run()
    assert res.steps == 30 and len(res.losses) == 30
    first, last = sum(res.losses[:5]) / 5, sum(res.losses[-5:]) / 5
    assert last < first * 0.8, (first, last)
    log = [json.loads(l) for l in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [l["step"] for l in log] == list(range(1, 31))
    assert all(l["tokens"] == 4 * 2 * 32 for l in log)
    # The final model loads as an hf: model spec directory.
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(res.final_dir)
    assert torch.equal(reloaded.model.embed_tokens.weight, run.model.model.embed_tokens.weight)
    # Only the newest checkpoints are kept.
    assert [p.name for p in run.checkpoints()] == ["step-00000020", "step-00000030"]


def test_resume_after_kill_reproduces_uninterrupted_losses(tokenizer, dataset: Path, tmp_path: Path) -> None:
    cfg = small_cfg(max_steps=12, checkpoint_every=4)
    reference = TrainingRun(make_tiny_model(tokenizer), tokenizer, cfg, tmp_path / "ref", dataset,
                            device=torch.device("cpu")).run()
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("train_proc.py")), tokenizer.name_or_path, str(dataset),
         str(run_dir), cfg.model_dump_json(), "6"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:  # type: ignore[union-attr]
        seen.append(line)
        if line.startswith("step 6 "):
            break
        assert time.monotonic() < deadline, "".join(seen)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [p.name for p in TrainingRun.checkpoints_in(run_dir)] == ["step-00000004"]
    killed_losses = [float(l.split()[3]) for l in seen if l.startswith("step ")]
    assert killed_losses == pytest.approx(reference.losses[:6], rel=0, abs=1e-6)
    # Resume in a fresh model object: steps 5..12 must match the uninterrupted run.
    resumed = TrainingRun(make_tiny_model(tokenizer, seed=123), tokenizer, cfg, run_dir, dataset,
                          device=torch.device("cpu")).run()
    assert resumed.steps == 12
    assert resumed.losses == pytest.approx(reference.losses[4:], rel=0, abs=1e-6)
