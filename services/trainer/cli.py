"""`linksyn train` and `linksyn probe` (mounted by linksyn.cli)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer


def _load_cfg(config: Optional[Path]):
    from linksyn.config import load_config

    return load_config(config)


def train(
    data: Path = typer.Option(..., "--data", help="Dataset directory (the sink's JSONL/Parquet shards) or one shard file."),
    model: str = typer.Option("embedded", "--model", help="Model spec to train: 'embedded' (SmolLM2-135M) or hf:PATH_OR_ID."),
    out: Path = typer.Option(Path("out/trainer"), "--out", help="Runs directory; the run writes OUT/RUN_ID/."),
    run_id: str = typer.Option("run", "--run-id", help="Run name; an existing run with checkpoints resumes."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (default: trainer.train.max_steps)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Packed sequence length (default: trainer.data.seq_len)."),
    general_corpus: Optional[str] = typer.Option(None, "--general-corpus", help="Plain-text file or glob mixed in."),
    general_ratio: Optional[float] = typer.Option(None, "--general-ratio", help="Share of tokens from the general corpus."),
    config: Optional[Path] = typer.Option(None, "--config", help="linksyn YAML config file."),
) -> None:
    """Continual pre-training on synthesized QA (causal LM loss, AdamW, warmup + cosine, exact resume).

    Works alone on CPU/GPU and under `torchrun` (one process per GPU, DDP)."""
    from linksyn.trainer.train import TrainingRun, auto_device, load_trainable

    cfg = _load_cfg(config).trainer
    data_upd = {k: v for k, v in {"seq_len": seq_len, "general_corpus": general_corpus,
                                   "general_ratio": general_ratio}.items() if v is not None}
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update=data_upd)})
    if max_steps is not None:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_steps": max_steps})})
    device = auto_device(cfg.device)
    typer.echo(f"loading {model} on {device} ...", err=True)
    mdl, tok = load_trainable(model, device, allow_download=cfg.allow_download)
    total = cfg.train.max_steps

    def on_log(entry) -> None:
        typer.echo(f"step {entry.step}/{total} loss {entry.loss:.4f} lr {entry.lr:.2e} "
                   f"{entry.tokens_per_s:,.0f} tok/s", err=True)

    try:
        run = TrainingRun(mdl, tok, cfg, out / run_id, data, device=device, run_id=run_id, on_log=on_log)
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    res = run.run()
    summary = {"run_dir": str(res.run_dir), "steps": res.steps, "tokens": res.tokens,
               "seconds": round(res.seconds, 2), "final": str(res.final_dir) if res.final_dir else None,
               "last_loss": res.losses[-1] if res.losses else None}
    typer.echo(json.dumps(summary))


def _progress_printer(label: str, every_s: float = 30.0) -> Any:
    """on_progress callback: a line on stderr at most every `every_s` seconds, with rate and time left."""
    t0 = last = time.monotonic()

    def show(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < every_s or done >= total:
            return
        last = now
        rate = done / (now - t0)
        typer.echo(f"  {label}: {done}/{total} questions, {rate:.1f}/s, about {(total - done) / rate / 60:.0f} min left",
                   err=True)

    return show


def _per_question_rows(spec: str, questions: Any, logliks: Any) -> list[dict]:
    """What --per-question writes: the readers keep file order, so (subject, row within it) names a question."""
    row_in_subject: dict[str, int] = {}
    rows = []
    for q, ll in zip(questions, logliks):
        row = row_in_subject.get(q.subject, 0)
        row_in_subject[q.subject] = row + 1
        rows.append({"benchmark": spec, "subject": q.subject, "row": row, "answer": q.answer,
                     "pick": int(ll.argmax()), "logliks": [round(float(x), 5) for x in ll]})
    return rows


def _read_per_question(path: Path) -> list[dict]:
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not JSON ({e.msg})") from None
        missing = {"benchmark", "subject", "row", "answer", "pick"} - set(row)
        if missing:
            raise ValueError(f"{path}:{n}: no {', '.join(sorted(missing))} (not a --per-question file?)")
        rows.append(row)
    return rows


def probe(
    benchmark: list[str] = typer.Option(..., "--benchmark", help="KIND:DIR, e.g. mmlu:../shared/data/eval/mmlu/test or cmmlu:DIR (repeatable)."),
    model: str = typer.Option("embedded", "--model", help="Model spec: 'embedded', hf:PATH (e.g. a run's final/ dir)."),
    max_per_subject: Optional[int] = typer.Option(None, "--max-per-subject", help="Questions per subject (default all)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Questions per forward pass (default: trainer.probe.batch_size)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32 or bf16 (default: trainer.probe.precision); bf16 is faster on GPUs and CPUs with AVX512-BF16."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full results (subjects, buckets) as JSON."),
    per_question: Optional[Path] = typer.Option(None, "--per-question", help="Also write every question's result as JSONL (benchmark, subject, row within the subject, answer, pick, choice log-likelihoods): compare two checkpoints question by question."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A --per-question file of an earlier probe (e.g. of the model before training): also print, per benchmark, the accuracy change on the questions both scored, how many flipped each way, and McNemar's p-value; the same for the debiased picks."),
    config: Optional[Path] = typer.Option(None, "--config", help="linksyn YAML config file."),
) -> None:
    """Score a model on multiple-choice benchmarks by answer log-likelihood; prints accuracy per subject group
    and overall, how often each letter was predicted, the mean probability of the right choice, and the debiased
    accuracy (the model's prior over choice positions taken out: a small model's accuracy is mostly its letter bias)."""
    from linksyn.common.benchmarks import CHOICE_LETTERS
    from linksyn.trainer.probes import (
        compare_per_question, load_benchmark, load_probe_model, parse_benchmark, score, subject_groups,
        taxonomy_labeler,
    )
    from linksyn.trainer.train import auto_device

    cfg = _load_cfg(config).trainer
    device = auto_device(cfg.device)
    base_rows = None
    if baseline:
        try:
            base_rows = _read_per_question(baseline)
        except (OSError, ValueError) as e:
            typer.echo(f"error: --baseline: {e}", err=True)
            raise typer.Exit(2)
    precision = precision or cfg.probe.precision
    batch_size = batch_size or cfg.probe.batch_size
    try:
        benches = [(spec, load_benchmark(spec, max_per_subject)) for spec in benchmark]
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(f"loading {model} on {device} ({precision}) ...", err=True)
    try:
        mdl, tok = load_probe_model(model, precision, device, allow_download=cfg.allow_download)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    label_of = taxonomy_labeler()
    report = {}
    if per_question:
        per_question.parent.mkdir(parents=True, exist_ok=True)
        per_question.write_text("")
    for spec, qs in benches:
        typer.echo(f"scoring {len(qs)} questions of {spec} ...", err=True)
        res = score(mdl, tok, qs, label_of=label_of, groups=subject_groups(parse_benchmark(spec)[1]),
                    batch_size=batch_size, max_context_tokens=cfg.probe.max_context_tokens, device=device,
                    on_progress=_progress_printer(spec))
        rows = _per_question_rows(spec, qs, res.logliks)
        if per_question:
            with per_question.open("a", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        typer.echo(f"\n{spec}  ({res.n} questions, {res.seconds:.0f} s)")
        groups = res.by_group or {}
        if not groups:  # no categories.py beside the benchmark: group by our taxonomy's discipline
            for (disc, _), b in res.by_bucket.items():
                g = groups.setdefault(disc, type(b)())
                g.n += b.n
                g.correct += b.correct
        width = max([len("overall"), *(len(name) for name in groups)])
        for name, b in sorted(groups.items()):
            typer.echo(f"  {name:<{width}}  {b.accuracy:7.2%}  (n={b.n})")
        typer.echo(f"  {'overall':<{width}}  {res.accuracy:7.2%}  (n={res.n})")
        letters = {CHOICE_LETTERS[i] if i < len(CHOICE_LETTERS) else str(i): k for i, k in sorted(res.predicted.items())}
        typer.echo("  predicted: " + ", ".join(f"{c} {k / res.n:.0%}" for c, k in letters.items())
                   + f"; mean probability of the right choice {res.mean_gold_prob:.4f}")
        typer.echo(f"  debiased (the model's prior over choice positions taken out): {res.debiased_accuracy:.2%}")
        report[spec] = {
            "n": res.n, "accuracy": res.accuracy, "debiased_accuracy": res.debiased_accuracy,
            "seconds": round(res.seconds, 1), "max_per_subject": max_per_subject,
            "predicted": letters, "mean_gold_prob": res.mean_gold_prob,
            "groups": {k: {"n": b.n, "accuracy": b.accuracy} for k, b in groups.items()},
            "subjects": {k: {"n": b.n, "accuracy": b.accuracy} for k, b in res.by_subject.items()},
            "buckets": [{"discipline": d, "difficulty": k, "n": b.n, "accuracy": b.accuracy}
                        for (d, k), b in sorted(res.by_bucket.items())],
        }
        if base_rows is not None:
            comparisons = compare_per_question(base_rows, rows)
            if not comparisons:
                typer.echo(f"  vs baseline: no question of {spec} in {baseline}")
            shown = [("", "vs_baseline", c) for c in comparisons]
            if comparisons and all("logliks" in r for r in base_rows):
                shown += [(" debiased", "vs_baseline_debiased", c)
                          for c in compare_per_question(base_rows, rows, debiased=True)]
            elif comparisons:
                typer.echo(f"  vs baseline debiased: {baseline} has no choice log-likelihoods (an older file)")
            for label, key, c in shown:
                typer.echo(f"  vs baseline{label} ({c.n} questions in both): {c.base_correct / c.n:.2%} -> "
                           f"{c.new_correct / c.n:.2%} ({100 * c.delta:+.2f} points), {c.gained} gained, {c.lost} lost, "
                           f"McNemar p = {c.p_value:.3g}")
                report[spec][key] = {"n": c.n, "base_accuracy": c.base_correct / c.n,
                                     "accuracy": c.new_correct / c.n, "gained": c.gained, "lost": c.lost,
                                     "p_value": c.p_value}
        if json_out:  # after each benchmark, so a long probe that is stopped keeps what finished
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps({"model": model, "precision": precision, "results": report}, indent=2))
    sys.stdout.flush()
