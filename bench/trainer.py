"""Trainer throughput and packing efficiency, against baselines measured in the same process.

    .venv/bin/python bench/trainer.py [--model embedded] [--steps 8] [--seq-len 256] [--micro-batch 4]

1. tokens/s of `TrainingRun` (streaming shards, packing, logging, metrics, schedule) vs a plain torch loop
   (pre-packed tensors, same model, optimizer, schedule, clipping) on the same data: the ratio is the trainer's
   overhead (aim >= 0.95);
2. packing efficiency (real tokens / tokens computed) of EOS packing vs per-document padding to the batch's longest.
Data: ../shared/data (GSM8K train as QA records, WikiText-2 as the general corpus), or a synthetic fallback.
Runs on CUDA when available (bf16 autocast), else CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linksyn.trainer.config import DataConfig, TrainConfig, TrainerConfig  # noqa: E402
from linksyn.trainer.data import PackedStream, read_shard, render_record, shard_files  # noqa: E402
from linksyn.trainer.train import TrainingRun, auto_device, hf_tokenize, load_trainable, lr_lambda  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Aim, Figure, add_json_option, write_json  # noqa: E402

SHARED = Path(os.environ.get("LINKSYN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def make_dataset(folder: Path, n: int) -> tuple[Path, str | None, str]:
    folder.mkdir(parents=True, exist_ok=True)
    gsm = SHARED / "seeds" / "gsm8k" / "train.jsonl"
    rows = []
    if gsm.is_file():
        with gsm.open() as f:
            for i, line in enumerate(f):
                if i >= n:
                    break
                r = json.loads(line)
                rows.append({"id": str(i), "question": r["question"], "answer": r["answer"]})
        source = f"GSM8K train ({len(rows)} records)"
    else:
        rng = np.random.default_rng(0)
        words = [f"w{i}" for i in range(500)]
        for i in range(n):
            rows.append({"id": str(i), "question": " ".join(rng.choice(words, rng.integers(10, 60))),
                         "answer": " ".join(rng.choice(words, rng.integers(5, 40)))})
        source = f"synthetic ({n} records; ../shared/data absent)"
    for s in range(4):
        with (folder / f"shard-{s:05d}.jsonl").open("w") as f:
            for r in rows[s::4]:
                f.write(json.dumps(r) + "\n")
    corpus = SHARED / "corpus" / "wikitext2" / "valid.txt"
    return folder, (str(corpus) if corpus.is_file() else None), source


def plain_loop(model, batches: list[torch.Tensor], cfg: TrainConfig, device, bf16: bool) -> float:
    """The baseline: the same optimisation with nothing around it. Returns tokens/s."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    model.train()
    tokens = 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for x in batches:
        x = x.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tokens += x.numel()
    float(loss.detach())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return tokens / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before each measurement")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--records", type=int, default=2000)
    add_json_option(ap)
    args = ap.parse_args()

    device = auto_device("auto")
    bf16 = device.type == "cuda"
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else None
    print(f"# trainer bench: {platform.node()} {platform.machine()} torch {torch.__version__} "
          f"threads {torch.get_num_threads()} device {gpu or 'cpu'}")
    with tempfile.TemporaryDirectory() as tmp:
        data, corpus, source = make_dataset(Path(tmp) / "data", args.records)
        print(f"data: {source}; general corpus: {corpus or 'none'} (30%)")
        tcfg = TrainConfig(max_steps=args.warmup + args.steps, warmup_steps=1, micro_batch=args.micro_batch,
                           checkpoint_every=10**9, log_every=1)
        cfg = TrainerConfig(data=DataConfig(seq_len=args.seq_len, general_corpus=corpus, general_ratio=0.3),
                            train=tcfg)
        t_load = time.perf_counter()
        model, tok = load_trainable(args.model, device)
        print(f"model {args.model}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, "
              f"loaded in {time.perf_counter() - t_load:.1f} s")
        init = {k: v.detach().clone() for k, v in model.state_dict().items()}

        # Baseline inputs: the same packed sequences, materialised up front (the plain loop does no data work).
        stream = iter(PackedStream(shard_files(data), hf_tokenize(tok), tok.eos_token_id, cfg.data,
                                   [Path(corpus)] if corpus else []))
        n_batches = args.warmup + args.steps
        batches = [torch.from_numpy(np.stack([next(stream) for _ in range(args.micro_batch)])) for _ in range(n_batches)]

        plain_loop(model, batches[: args.warmup], tcfg, device, bf16)
        model.load_state_dict(init)
        base = plain_loop(model, batches[args.warmup :], tcfg, device, bf16)
        model.load_state_dict(init)

        logs = []
        run = TrainingRun(model, tok, cfg, Path(tmp) / "run", data, device=device, on_log=logs.append)
        run.run()
        timed = logs[args.warmup :]
        ours = sum(l.tokens for l in timed) / sum(l.tokens / l.tokens_per_s for l in timed)

        # Packing efficiency vs padding each document to the longest in its micro-batch.
        docs = [render_record(r, cfg.data.template, cfg.data.max_record_chars)
                for f in shard_files(data) for r in read_shard(f)][:2000]
        lens = np.array([len(t) + 1 for t in hf_tokenize(tok)(docs)])
        lens = np.minimum(lens, args.seq_len)
        mb = args.micro_batch
        padded = sum(len(lens[i : i + mb]) * lens[i : i + mb].max() for i in range(0, len(lens), mb))
        pad_eff = lens.sum() / padded

    print("\n| figure | linksyn | baseline | ratio |")
    print("|---|---|---|---|")
    print(f"| training tokens/s ({device.type}, seq {args.seq_len}, micro-batch {mb}) | {ours:,.0f} | "
          f"{base:,.0f} (plain torch loop) | {ours / base:.3f} |")
    print(f"| packing efficiency (real tokens / computed) | 1.000 (EOS packing) | "
          f"{pad_eff:.3f} (pad to longest in batch) | {1 / pad_eff:.2f} |")
    if args.json:
        write_json(args.json, [
            Figure(f"training tokens/s ({device.type}, seq {args.seq_len}, micro-batch {mb})", ours, "tokens/s",
                   "plain torch loop", base, aim=Aim(">=", 0.95, on="ratio"), note=f"{args.steps} timed steps"),
            Figure("packing efficiency (real tokens / computed)", 1.0, "", "pad to longest in batch", pad_eff,
                   note="EOS packing computes no padding"),
        ], [f"data: {source}; model {args.model}"])


if __name__ == "__main__":
    main()
