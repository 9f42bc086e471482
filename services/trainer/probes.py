"""Model probes: multiple-choice benchmarks scored by answer log-likelihood, as lm-evaluation-harness does.

For each question the model scores every choice's continuation (" A", " B", ...) after the prompt; the prediction
is the choice with the highest total log-probability. When every continuation is one token (the usual case) one
forward pass of the prompt scores all choices (the last position's log-softmax): prompts are batched sorted by
length, left-padded, and only the last position's logits are computed. Otherwise each choice gets its own sequence.

Accuracy is bucketed by discipline x difficulty (the extractor's taxonomy maps each benchmark subject) and per
subject group (the benchmark's own categories.py when it ships one: MMLU's STEM / humanities / social sciences /
other, CMMLU's likewise). Deficits (target - accuracy) become a ProbeReport for the sampler.

A small model puts nearly all its picks on one letter, so its accuracy is that letter's share among the answers.
`debiased_accuracy` takes the model's prior over choice positions out (the mean log-probability of each position
over the benchmark, subtracted before the argmax, as PriDe and contextual calibration do): the figure that still
moves with what such a model knows.
"""

from __future__ import annotations

import ast
import inspect
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from linksyn.common.benchmarks import CHOICE_LETTERS, read_mc_benchmark


@dataclass(frozen=True)
class MCQuestion:
    """One multiple-choice question of a benchmark."""

    benchmark: str
    subject: str
    question: str
    choices: tuple[str, ...]
    answer: int
    """Index of the correct choice."""
    lang: str = "en"


@dataclass
class BucketScore:
    n: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


@dataclass
class ProbeResult:
    benchmark: str
    n: int
    correct: int
    by_subject: dict[str, BucketScore] = field(default_factory=dict)
    by_group: dict[str, BucketScore] = field(default_factory=dict)
    by_bucket: dict[tuple[str, int], BucketScore] = field(default_factory=dict)
    predicted: dict[int, int] = field(default_factory=dict)
    """How often each choice index was predicted: a small model that always picks one letter scores the share of
    that letter among the answers, which accuracy alone does not show."""
    gold_prob_sum: float = 0.0
    """Sum over questions of the probability of the right choice, renormalised over the choices."""
    seconds: float = 0.0
    logliks: list[np.ndarray] = field(default_factory=list)
    """Each question's choice log-likelihoods, in the order the questions were given."""
    debiased_correct: int = 0
    """Questions right once the model's prior over choice positions is taken out (`debiased_picks`)."""

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def debiased_accuracy(self) -> float:
        return self.debiased_correct / self.n if self.n else 0.0

    @property
    def mean_gold_prob(self) -> float:
        """A smoother figure than accuracy: it moves when the model grows surer of the right answer even where
        the argmax does not change yet (0.25 = no preference among four choices)."""
        return self.gold_prob_sum / self.n if self.n else 0.0


# -- benchmark readers ----------------------------------------------------------------------------------------------
def read_mmlu(folder: str | Path, max_per_subject: int | None = None) -> list[MCQuestion]:
    """An MMLU-layout folder (linksyn.common.benchmarks): headerless question,A,B,C,D,answer; subject from the file."""
    return [MCQuestion("mmlu", q.subject, q.question, q.choices, q.answer)
            for q in read_mc_benchmark(str(folder), "mmlu", max_per_subject)]


def read_cmmlu(folder: str | Path, max_per_subject: int | None = None) -> list[MCQuestion]:
    """A CMMLU-layout folder (linksyn.common.benchmarks): header `,Question,A,B,C,D,Answer`; subject = file name."""
    return [MCQuestion("cmmlu", q.subject, q.question, q.choices, q.answer, lang="zh")
            for q in read_mc_benchmark(str(folder), "cmmlu", max_per_subject)]


READERS = {"mmlu": read_mmlu, "cmmlu": read_cmmlu}


def parse_benchmark(spec: str) -> tuple[str, Path]:
    """'mmlu:DIR' -> ('mmlu', DIR)."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in READERS:
        raise ValueError(f"benchmark {spec!r}: expected KIND:DIR with KIND one of {sorted(READERS)}")
    return kind, Path(path)


def load_benchmark(spec: str, max_per_subject: int | None = None) -> list[MCQuestion]:
    kind, path = parse_benchmark(spec)
    return READERS[kind](path, max_per_subject)


def subject_groups(folder: str | Path) -> dict[str, str]:
    """subject -> top-level group from the benchmark's categories.py (beside the folder or in ../src), if any.

    Read with `ast` (no code runs): `subcategories` maps subject -> [subcategory]; `categories` maps group ->
    [subcategory] (MMLU), or `name_en2zh`/`subcategories`/`categories` likewise (CMMLU)."""
    folder = Path(folder)
    for candidate in (folder.parent / "categories.py", folder.parent.parent / "categories.py",
                      folder.parent.parent / "src" / "categories.py"):
        if candidate.is_file():
            break
    else:
        return {}
    values: dict[str, Any] = {}
    for node in ast.parse(candidate.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    subcats, cats = values.get("subcategories", {}), values.get("categories", {})
    group_of_sub = {sub: group for group, subs in cats.items() for sub in subs}
    out = {}
    for subject, subs in subcats.items():
        for sub in subs:
            if sub in group_of_sub:
                out[subject] = group_of_sub[sub]
                break
    return out


# -- prompts --------------------------------------------------------------------------------------------------------
def prompt_for(q: MCQuestion) -> str:
    """lm-evaluation-harness's MMLU-style zero-shot prompt (CMMLU in Chinese); the continuation is ' <letter>'."""
    subject = q.subject.replace("_", " ")
    options = "\n".join(f"{CHOICE_LETTERS[i]}. {c}" for i, c in enumerate(q.choices))
    if q.lang == "zh":
        return f"以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n题目：{q.question}\n{options}\n答案："
    return (f"The following are multiple choice questions (with answers) about {subject}.\n\n"
            f"{q.question.strip()}\n{options}\nAnswer:")


def continuations(q: MCQuestion) -> list[str]:
    return [(CHOICE_LETTERS[i] if q.lang == "zh" else f" {CHOICE_LETTERS[i]}") for i in range(len(q.choices))]


# -- the probed model -----------------------------------------------------------------------------------------------
def load_probe_model(spec: str, precision: str = "fp32", device: torch.device | str = "cpu",
                     allow_download: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) to score with: the model spec loaded as for training, cast to the probe precision."""
    from linksyn.trainer.train import load_trainable

    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if precision not in dtypes:
        raise ValueError(f"probe precision {precision!r}: expected one of {sorted(dtypes)}")
    model, tok = load_trainable(spec, device, allow_download=allow_download)
    return model.to(dtypes[precision]).eval(), tok


# -- scoring --------------------------------------------------------------------------------------------------------
@torch.inference_mode()
def choice_logliks(model: Any, tokenizer: Any, questions: Sequence[MCQuestion], batch_size: int = 16,
                   max_context_tokens: int = 1024, device: torch.device | str = "cpu",
                   on_progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    """Total log-probability of each choice's continuation after each question's prompt.

    `on_progress(done, total)` is called after every forward pass (a full benchmark takes tens of minutes on
    CPU)."""
    model.eval()
    out: list[np.ndarray] = [np.empty(0)] * len(questions)
    single, multi = [], []
    cont_ids: dict[int, list[list[int]]] = {}
    ctx_ids: dict[int, list[int]] = {}
    for i, q in enumerate(questions):
        ctx = tokenizer(prompt_for(q), add_special_tokens=False)["input_ids"][-max_context_tokens:]
        conts = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations(q)]
        ctx_ids[i], cont_ids[i] = ctx, conts
        (single if all(len(c) == 1 for c in conts) else multi).append(i)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # Single-token choices: one forward of the prompt scores them all (log-softmax at the last position). Prompts
    # are sorted by length so a batch pads little, and padded on the left so every row's last position is the
    # same column: the model computes logits for that column only (the vocabulary projection of every position
    # and its log-softmax were most of the cost).
    single.sort(key=lambda i: len(ctx_ids[i]), reverse=True)
    for start in range(0, len(single), batch_size):
        idx = single[start : start + batch_size]
        logp = torch.log_softmax(_last_logits_left_padded(model, [ctx_ids[i] for i in idx], pad, device).float(), -1)
        for row, i in enumerate(idx):
            out[i] = logp[row, [c[0] for c in cont_ids[i]]].cpu().numpy().astype(np.float64)
        if on_progress:
            on_progress(start + len(idx), len(questions))
    # General case: one sequence per choice, summing the continuation tokens' log-probabilities.
    items = sorted(((i, k) for i in multi for k in range(len(cont_ids[i]))),
                   key=lambda ik: len(ctx_ids[ik[0]]) + len(cont_ids[ik[0]][ik[1]]), reverse=True)
    scores: dict[int, dict[int, float]] = defaultdict(dict)
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        seqs = [ctx_ids[i] + cont_ids[i][k] for i, k in chunk]
        logits = _forward_right_padded(model, seqs, pad, device)
        logp = torch.log_softmax(logits.float(), dim=-1)
        for row, (i, k) in enumerate(chunk):
            cont = cont_ids[i][k]
            n_ctx = len(ctx_ids[i])
            scores[i][k] = sum(float(logp[row, n_ctx - 1 + j, tok]) for j, tok in enumerate(cont))
        if on_progress:
            done_multi = len({i for i, _ in items[: start + len(chunk)]})
            on_progress(len(single) + done_multi, len(questions))
    for i in multi:
        out[i] = np.array([scores[i][k] for k in range(len(cont_ids[i]))])
    return out


def _forward_params(model: Any) -> set[str]:
    try:
        return set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return set()


def _last_logits_left_padded(model: Any, seqs: list[list[int]], pad: int, device: Any) -> torch.Tensor:
    """Logits at the last position of each sequence, [batch, vocab], from one left-padded forward pass.

    The mask hides the padding and positions count from each row's first real token (position_ids; rotary
    models would not mind the shift, absolute-position ones would), so a row's logits equal those of the row
    alone. Only the last column goes through the vocabulary projection when the model takes `logits_to_keep`
    (transformers >= 4.50; `num_logits_to_keep` before)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
        mask[r, width - len(s) :] = 1
    params = _forward_params(model)
    kw: dict[str, Any] = {}
    if "position_ids" in params:
        kw["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(device)
    elif (mask == 0).any():
        raise ValueError(f"{type(model).__name__}.forward takes no position_ids: left padding would shift positions")
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            kw[name] = 1
            break
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **kw).logits
    return logits[:, -1]


def _forward_right_padded(model: Any, seqs: list[list[int]], pad: int, device: Any) -> torch.Tensor:
    """Logits of every position, [batch, width, vocab]; row r is real up to len(seqs[r])."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    return model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits


def score(model: Any, tokenizer: Any, questions: Sequence[MCQuestion], label_of: Any = None,
          groups: dict[str, str] | None = None, batch_size: int = 16, max_context_tokens: int = 1024,
          device: Any = "cpu", on_progress: Callable[[int, int], None] | None = None) -> ProbeResult:
    """Accuracy overall, per subject, per group and per (discipline, difficulty) bucket.

    `label_of(subject) -> (discipline, difficulty)` buckets the subjects (unknown -> ('other', 0)); the result keeps
    every question's choice log-likelihoods (`logliks`, in question order) for paired comparisons of checkpoints."""
    t0 = time.perf_counter()
    ll = choice_logliks(model, tokenizer, questions, batch_size, max_context_tokens, device, on_progress)
    bench = questions[0].benchmark if questions else ""
    res = ProbeResult(bench, 0, 0, logliks=ll)
    for q, scores in zip(questions, ll):
        pick = int(np.argmax(scores))
        ok = int(pick == q.answer)
        res.predicted[pick] = res.predicted.get(pick, 0) + 1
        probs = np.exp(scores - scores.max())
        res.gold_prob_sum += float(probs[q.answer] / probs.sum())
        res.n += 1
        res.correct += ok
        group = groups.get(q.subject, "other") if groups else None
        bucket = label_of(q.subject) if label_of else ("other", 0)
        for table, key in ((res.by_subject, q.subject), (res.by_group, group), (res.by_bucket, bucket)):
            if key is None:
                continue
            b = table.setdefault(key, BucketScore())
            b.n += 1
            b.correct += ok
    if questions:
        picks = debiased_picks(ll)
        res.debiased_correct = int(sum(int(p) == q.answer for p, q in zip(picks, questions)))
    res.seconds = time.perf_counter() - t0
    return res


def debiased_picks(logliks: Sequence[np.ndarray]) -> np.ndarray:
    """Each question's pick once the prior over choice positions is taken out: choice log-likelihoods are
    renormalised over the choices, and the mean of each position over the questions with as many choices is
    subtracted before the argmax. O(questions x choices), vectorised per choice count."""
    picks = np.zeros(len(logliks), dtype=np.int64)
    by_count: dict[int, list[int]] = defaultdict(list)
    for i, scores in enumerate(logliks):
        by_count[len(scores)].append(i)
    for idx in by_count.values():
        m = np.stack([np.asarray(logliks[i], dtype=np.float64) for i in idx])
        logp = m - np.logaddexp.reduce(m, axis=1, keepdims=True)
        picks[idx] = np.argmax(logp - logp.mean(axis=0), axis=1)
    return picks


def taxonomy_labeler() -> Any:
    """subject -> (discipline, difficulty) with the extractor's taxonomy."""
    from linksyn.common.taxonomy import load_taxonomy

    tax = load_taxonomy()

    def label_of(subject: str) -> tuple[str, int]:
        label = tax.label_for(subject=subject)
        return (label.discipline, int(label.difficulty)) if label else ("other", 0)

    return label_of


def probe_report(results: Iterable[ProbeResult], run_id: str, checkpoint: str, target_accuracy: float,
                 reference: dict[tuple[str, int], float] | None = None) -> Any:
    """A ProbeReport: one bucket per (discipline, difficulty) across benchmarks, deficit = target - accuracy."""
    from linksyn.v1 import records_pb2

    merged: dict[tuple[str, int], BucketScore] = {}
    names = []
    for r in results:
        names.append(r.benchmark)
        for key, b in r.by_bucket.items():
            m = merged.setdefault(key, BucketScore())
            m.n += b.n
            m.correct += b.correct
    report = records_pb2.ProbeReport(run_id=run_id, checkpoint=checkpoint, benchmarks=names,
                                     created_unix_ms=int(time.time() * 1000))
    for (disc, diff), b in sorted(merged.items()):
        target = (reference or {}).get((disc, diff), target_accuracy)
        report.buckets.add(discipline=disc, difficulty=diff, n=b.n, accuracy=b.accuracy, deficit=target - b.accuracy)
    return report


# -- paired comparison of two checkpoints -------------------------------------------------------------------------
@dataclass
class PairedComparison:
    """Two probes of the same questions, question by question (McNemar's test on the discordant pairs).

    Accuracy differences between checkpoints are small next to a subset's sampling error; on the same questions
    only the questions where the two disagree carry information, which makes the comparison far sharper."""

    benchmark: str
    n: int
    """Questions both probes scored."""
    base_correct: int
    new_correct: int
    gained: int
    """Wrong before, right now."""
    lost: int
    """Right before, wrong now."""

    @property
    def delta(self) -> float:
        return (self.new_correct - self.base_correct) / self.n if self.n else 0.0

    @property
    def p_value(self) -> float:
        """Two-sided exact McNemar p-value (binomial test of gained vs lost at 1/2)."""
        from math import comb

        k, m = min(self.gained, self.lost), self.gained + self.lost
        if m == 0:
            return 1.0
        # Integer true division: exact for any m (2.0**m overflows a float past m = 1023; a CPT that moves a small
        # model's letter bias flips thousands of questions).
        tail = sum(comb(m, i) for i in range(k + 1)) / (1 << m)
        return min(1.0, 2.0 * tail)


def question_key(row: dict) -> tuple[str, str, int]:
    """Identity of a question in a per-question file: (benchmark folder, subject, row within the subject)."""
    kind, folder = parse_benchmark(row["benchmark"])
    return (f"{kind}:{folder.resolve()}", row["subject"], int(row["row"]))


def _with_debiased_picks(rows: Iterable[dict]) -> list[dict]:
    """The rows with `pick` replaced by `debiased_picks` over each benchmark's rows (needs their `logliks`)."""
    rows = list(rows)
    by_bench: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if "logliks" not in r:
            raise ValueError(f"question {question_key(r)} has no logliks: a debiased comparison needs per-question "
                             "files written by `linksyn probe --per-question`")
        by_bench[question_key(r)[0]].append(i)
    out = list(rows)
    for idx in by_bench.values():
        for i, p in zip(idx, debiased_picks([rows[i]["logliks"] for i in idx])):
            out[i] = {**rows[i], "pick": int(p)}
    return out


def compare_per_question(base: Iterable[dict], new: Iterable[dict], debiased: bool = False) -> list[PairedComparison]:
    """One PairedComparison per benchmark over the questions both per-question row sets hold (rows as written by
    `linksyn probe --per-question`: benchmark, subject, row, answer, pick, logliks). `debiased`: compare the picks
    with each probe's own prior over choice positions taken out (`debiased_picks` over each set's rows of a
    benchmark), which a change of letter bias alone does not move."""
    if debiased:
        base, new = _with_debiased_picks(base), _with_debiased_picks(new)
    before = {question_key(r): r for r in base}
    out: dict[str, PairedComparison] = {}
    for r in new:
        b = before.get(question_key(r))
        if b is None:
            continue
        if int(b["answer"]) != int(r["answer"]):
            raise ValueError(f"question {question_key(r)} has answer {b['answer']} in the baseline, {r['answer']} now: "
                             "not the same benchmark files")
        c = out.setdefault(question_key(r)[0], PairedComparison(r["benchmark"], 0, 0, 0, 0, 0))
        was, now = int(b["pick"]) == int(b["answer"]), int(r["pick"]) == int(r["answer"])
        c.n += 1
        c.base_correct += was
        c.new_correct += now
        c.gained += now and not was
        c.lost += was and not now
    return list(out.values())
