"""Probe scoring speed (questions/s) against the previous scoring code, measured in the same process.

    .venv/bin/python bench/probe.py [--model embedded] [--questions 96] [--batch-size 16] [--bf16]

Baseline: the scoring as it was before the batched fast path (questions in file order, right padding, logits and
log-softmax over every position). Ours: `linksyn.trainer.probes.choice_logliks` (prompts sorted by length, left
padding, logits of the last position only). Both score the same questions with the same model; the bench checks
they agree (max |difference| of the log-likelihoods, same predicted letter) and prints the speed ratio.
With --bf16 it also times ours on a bfloat16 copy of the model and reports how often its prediction matches fp32.
Questions: an evenly spaced sample of the MMLU test set in ../shared/data (so prompt lengths are representative),
or the CMMLU test set with --benchmark cmmlu; a synthetic fallback when the folder is absent.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from linksyn.trainer.probes import (  # noqa: E402
    LETTERS, MCQuestion, choice_logliks, continuations, load_benchmark, prompt_for,
)
from linksyn.trainer.train import auto_device, load_trainable  # noqa: E402
from report import Figure, add_json_option, write_json  # noqa: E402

SHARED = Path(os.environ.get("LINKSYN_SHARED_DATA", ROOT.parent / "shared" / "data"))
FOLDERS = {"mmlu": SHARED / "eval" / "mmlu" / "test", "cmmlu": SHARED / "eval" / "cmmlu" / "data" / "test"}


@torch.no_grad()
def baseline_choice_logliks(model, tokenizer, questions, batch_size=16, max_context_tokens=1024, device="cpu"):
    """The single-token scoring before the fast path: file order, right padding, full logits + log-softmax."""
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = []
    for start in range(0, len(questions), batch_size):
        qs = questions[start : start + batch_size]
        seqs = [tokenizer(prompt_for(q), add_special_tokens=False)["input_ids"][-max_context_tokens:] for q in qs]
        conts = [[tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in continuations(q)] for q in qs]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        logp = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(), -1)
        for r, s in enumerate(seqs):
            out.append(np.array([float(logp[r, len(s) - 1, c]) for c in conts[r]]))
    return out


def sample_questions(kind: str, n: int) -> tuple[list[MCQuestion], str]:
    folder = FOLDERS[kind]
    if folder.is_dir():
        qs = load_benchmark(f"{kind}:{folder}")
        step = len(qs) / n
        return [qs[int(k * step)] for k in range(n)], f"{kind} test, every {step:.0f}th of {len(qs)} questions"
    rng = np.random.default_rng(0)
    words = [f"word{i}" for i in range(300)]
    qs = [MCQuestion("mmlu", "physics", " ".join(rng.choice(words, rng.integers(20, 300))),
                     tuple(" ".join(rng.choice(words, 5)) for _ in LETTERS), int(rng.integers(4))) for _ in range(n)]
    return qs, f"synthetic ({n} questions; {folder} absent)"


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    res = fn(*args, **kw)
    return res, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--benchmark", choices=sorted(FOLDERS), default="mmlu")
    ap.add_argument("--questions", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--bf16", action="store_true", help="also time a bfloat16 copy of the model")
    add_json_option(ap)
    args = ap.parse_args()

    device = auto_device("auto")
    print(f"# probe bench: {platform.node()} {platform.machine()} torch {torch.__version__} "
          f"threads {torch.get_num_threads()} device {device}")
    model, tok = load_trainable(args.model, device)
    qs, source = sample_questions(args.benchmark, args.questions)
    n_tok = [len(tok(prompt_for(q), add_special_tokens=False)["input_ids"]) for q in qs]
    print(f"questions: {source}; prompt tokens mean {np.mean(n_tok):.0f}, max {max(n_tok)}")
    choice_logliks(model, tok, qs[:2], batch_size=2, device=device)  # warm-up (allocator, kernels)

    base, t_base = timed(baseline_choice_logliks, model, tok, qs, args.batch_size, device=device)
    ours, t_ours = timed(choice_logliks, model, tok, qs, args.batch_size, device=device)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(base, ours))
    same = np.mean([int(np.argmax(a)) == int(np.argmax(b)) for a, b in zip(base, ours)])
    rows = [("fp32, batched left-padded last-position logits", len(qs) / t_ours, len(qs) / t_base)]
    notes = [f"questions: {source}", f"agreement with baseline: max |dlogp| {diff:.2e}, same prediction {same:.1%}"]
    print(notes[-1])
    if args.bf16:
        half = copy.deepcopy(model).to(torch.bfloat16)
        choice_logliks(half, tok, qs[:2], batch_size=2, device=device)
        low, t_low = timed(choice_logliks, half, tok, qs, args.batch_size, device=device)
        agree = np.mean([int(np.argmax(a)) == int(np.argmax(b)) for a, b in zip(ours, low)])
        notes.append(f"bf16 vs fp32: same prediction {agree:.1%}, "
                     f"max |dlogp| {max(float(np.abs(a - b).max()) for a, b in zip(ours, low)):.2e}")
        print(notes[-1])
        rows.append(("bf16 copy, same path", len(qs) / t_low, len(qs) / t_base))

    print("\n| figure | linksyn | baseline (previous code, fp32) | ratio |")
    print("|---|---|---|---|")
    figures = []
    for name, q_s, b_s in rows:
        label = f"probe questions/s ({device.type}, {name}, batch {args.batch_size})"
        print(f"| {label} | {q_s:.2f} | {b_s:.2f} | {q_s / b_s:.2f} |")
        figures.append(Figure(label, q_s, "questions/s", baseline_name="previous scoring code, fp32",
                              baseline_value=b_s))
    if args.json:
        write_json(args.json, figures, notes)


if __name__ == "__main__":
    main()
