"""A training run in its own process, for the kill-and-resume test: trains, and after step `hang_after` stops
making progress (sleeps) so the test can SIGKILL it at a known point after a checkpoint."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from conftest import make_tiny_model  # noqa: E402

from linksyn.trainer.config import TrainerConfig  # noqa: E402
from linksyn.trainer.train import TrainingRun  # noqa: E402


def main() -> None:
    tok_dir, data, run_dir, cfg_json, hang_after = sys.argv[1:6]
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    cfg = TrainerConfig.model_validate_json(cfg_json)

    def on_log(log) -> None:
        print(f"step {log.step} loss {log.loss!r}", flush=True)
        if log.step >= int(hang_after):
            while True:
                time.sleep(1)

    TrainingRun(make_tiny_model(tok), tok, cfg, run_dir, data, device=torch.device("cpu"), on_log=on_log).run()


if __name__ == "__main__":
    main()
