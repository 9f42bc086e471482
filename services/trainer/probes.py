"""Model probes: multiple-choice benchmarks scored by answer log-likelihood, as lm-evaluation-harness does.

For each question the model scores every choice's continuation (" A", " B", ...) after the prompt; the prediction
is the choice with the highest total log-probability. When every continuation is one token (the usual case) one
forward pass per question suffices (the last position's log-softmax); otherwise each choice gets its own sequence.

Accuracy is bucketed by discipline x difficulty (the extractor's taxonomy maps each benchmark subject) and per
subject group (the benchmark's own categories.py when it ships one: MMLU's STEM / humanities / social sciences /
other, CMMLU's likewise). Deficits (target - accuracy) become a ProbeReport for the sampler.
"""

from __future__ import annotations

import ast
import csv
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

LETTERS = ("A", "B", "C", "D")


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
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


# -- benchmark readers ----------------------------------------------------------------------------------------------
def _subject_from_file(path: Path) -> str:
    stem = path.stem
    for suffix in ("_test", "_dev", "_val"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def read_mmlu(folder: str | Path, max_per_subject: int | None = None) -> list[MCQuestion]:
    """MMLU-style CSV folder: no header; question, A, B, C, D, answer letter; subject from `<subject>_test.csv`."""
    folder = Path(folder)
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no MMLU-style .csv files in {str(folder)!r}")
    out = []
    for path in files:
        subject = _subject_from_file(path)
        with path.open(encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.reader(f)):
                if max_per_subject is not None and i >= max_per_subject:
                    break
                if len(row) != 6 or row[5].strip() not in LETTERS:
                    raise ValueError(f"{path}:{i + 1}: expected question,A,B,C,D,answer-letter; got {len(row)} fields")
                out.append(MCQuestion("mmlu", subject, row[0], tuple(row[1:5]), LETTERS.index(row[5].strip())))
    return out


def read_cmmlu(folder: str | Path, max_per_subject: int | None = None) -> list[MCQuestion]:
    """CMMLU CSV folder: header `,Question,A,B,C,D,Answer`; subject from the file name."""
    folder = Path(folder)
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no CMMLU .csv files in {str(folder)!r}")
    out = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            for i, row in enumerate(reader):
                if max_per_subject is not None and i >= max_per_subject:
                    break
                ans = (row.get("Answer") or "").strip()
                if ans not in LETTERS or not row.get("Question"):
                    raise ValueError(f"{path}:{i + 2}: expected Question and Answer A-D, got {row!r}")
                out.append(MCQuestion("cmmlu", path.stem, row["Question"],
                                      tuple(row[k] for k in LETTERS), LETTERS.index(ans), lang="zh"))
    return out


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
    options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(q.choices))
    if q.lang == "zh":
        return f"以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n题目：{q.question}\n{options}\n答案："
    return (f"The following are multiple choice questions (with answers) about {subject}.\n\n"
            f"{q.question.strip()}\n{options}\nAnswer:")


def continuations(q: MCQuestion) -> list[str]:
    return [(LETTERS[i] if q.lang == "zh" else f" {LETTERS[i]}") for i in range(len(q.choices))]


# -- scoring --------------------------------------------------------------------------------------------------------
@torch.no_grad()
def choice_logliks(model: Any, tokenizer: Any, questions: Sequence[MCQuestion], batch_size: int = 16,
                   max_context_tokens: int = 1024, device: torch.device | str = "cpu") -> list[np.ndarray]:
    """Total log-probability of each choice's continuation after each question's prompt."""
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
    # One forward per question: log-softmax at the last prompt position, read at each choice's token.
    for start in range(0, len(single), batch_size):
        idx = single[start : start + batch_size]
        seqs = [ctx_ids[i] for i in idx]
        logits, lengths = _forward_right_padded(model, seqs, pad, device)
        logp = torch.log_softmax(logits.float(), dim=-1)
        for row, i in enumerate(idx):
            last = logp[row, lengths[row] - 1]
            out[i] = np.array([float(last[c[0]]) for c in cont_ids[i]])
    # General case: one sequence per choice, summing the continuation tokens' log-probabilities.
    items = [(i, k) for i in multi for k in range(len(cont_ids[i]))]
    scores: dict[int, list[float]] = defaultdict(list)
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        seqs = [ctx_ids[i] + cont_ids[i][k] for i, k in chunk]
        logits, lengths = _forward_right_padded(model, seqs, pad, device)
        logp = torch.log_softmax(logits.float(), dim=-1)
        for row, (i, k) in enumerate(chunk):
            cont = cont_ids[i][k]
            n_ctx = len(ctx_ids[i])
            total = sum(float(logp[row, n_ctx - 1 + j, tok]) for j, tok in enumerate(cont))
            scores[i].append(total)
    for i in multi:
        out[i] = np.array(scores[i])
    return out


def _forward_right_padded(model: Any, seqs: list[list[int]], pad: int, device: Any) -> tuple[torch.Tensor, list[int]]:
    lengths = [len(s) for s in seqs]
    width = max(lengths)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    return logits.cpu(), lengths


def score(model: Any, tokenizer: Any, questions: Sequence[MCQuestion], label_of: Any = None,
          groups: dict[str, str] | None = None, batch_size: int = 16, max_context_tokens: int = 1024,
          device: Any = "cpu") -> ProbeResult:
    """Accuracy overall, per subject, per group and per (discipline, difficulty) bucket.

    `label_of(subject) -> (discipline, difficulty)` buckets the subjects (unknown -> ('other', 0))."""
    t0 = time.perf_counter()
    ll = choice_logliks(model, tokenizer, questions, batch_size, max_context_tokens, device)
    bench = questions[0].benchmark if questions else ""
    res = ProbeResult(bench, 0, 0)
    for q, scores in zip(questions, ll):
        ok = int(int(np.argmax(scores)) == q.answer)
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
    res.seconds = time.perf_counter() - t0
    return res


def taxonomy_labeler() -> Any:
    """subject -> (discipline, difficulty) with the extractor's taxonomy."""
    from linksyn.extractor.taxonomy import load_taxonomy

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
