from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from linksyn.trainer.probes import (
    MCQuestion, PairedComparison, choice_logliks, compare_per_question, continuations, debiased_picks, load_benchmark,
    load_probe_model, probe_report, prompt_for, read_cmmlu, read_mmlu, score, subject_groups,
)
from tests.trainer.conftest import make_tiny_model


def write_mmlu(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "college_physics_test.csv").write_text(
        'What is the SI unit of force?,joule,newton,watt,pascal,B\n'
        '"Speed of light, roughly?",3e8 m/s,3e5 m/s,300 m/s,3 m/s,A\n')
    (folder / "high_school_biology_test.csv").write_text('What do ribosomes make?,lipids,proteins,DNA,sugars,B\n')
    (folder.parent / "categories.py").write_text(
        'subcategories = {"college_physics": ["physics"], "high_school_biology": ["biology"]}\n'
        'categories = {"STEM": ["physics", "biology"], "humanities": ["history"]}\n')
    return folder


class HandModel(torch.nn.Module):
    """Logits that ignore the context: token t always gets logit table[t] (so log-probs are known by hand)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        b, n = input_ids.shape
        return SimpleNamespace(logits=self.table.expand(b, n, -1).clone())


def test_readers_and_groups(tmp_path: Path) -> None:
    qs = read_mmlu(write_mmlu(tmp_path / "mmlu" / "test"))
    assert [(q.subject, q.answer) for q in qs] == [("college_physics", 1), ("college_physics", 0),
                                                   ("high_school_biology", 1)]
    assert qs[1].question == "Speed of light, roughly?"
    assert subject_groups(tmp_path / "mmlu" / "test") == {"college_physics": "STEM", "high_school_biology": "STEM"}
    cm = tmp_path / "cmmlu"
    cm.mkdir()
    (cm / "agronomy.csv").write_text(",Question,A,B,C,D,Answer\n0,土地是什么,工具,土地,劳动力,资金,B\n", encoding="utf-8")
    q = read_cmmlu(cm)[0]
    assert (q.subject, q.answer, q.lang) == ("agronomy", 1, "zh")
    assert prompt_for(q).endswith("答案：") and continuations(q) == ["A", "B", "C", "D"]
    with pytest.raises(ValueError, match="KIND:DIR"):
        load_benchmark("nosuch:/x")


def test_scores_equal_hand_computation(tokenizer, tmp_path: Path) -> None:
    qs = read_mmlu(write_mmlu(tmp_path / "mmlu" / "test"))
    letter_ids = [tokenizer(f" {c}", add_special_tokens=False)["input_ids"] for c in "ABCD"]
    assert all(len(t) == 1 for t in letter_ids)
    table = torch.zeros(len(tokenizer))
    # Hand-set logits: " B" = 2, " A" = 1, " C" = " D" = 0, everything else 0.
    table[letter_ids[1][0]] = 2.0
    table[letter_ids[0][0]] = 1.0
    lse = math.log(math.exp(2) + math.exp(1) + (len(tokenizer) - 2))
    ll = choice_logliks(HandModel(table), tokenizer, qs)
    for row in ll:
        assert row == pytest.approx([1 - lse, 2 - lse, -lse, -lse], abs=1e-4)
    res = score(HandModel(table), tokenizer, qs, label_of=lambda s: ("physics", 4) if "physics" in s else ("biology", 3),
                groups=subject_groups(tmp_path / "mmlu" / "test"))
    # The model always answers B: right on questions 1 and 3, wrong on 2.
    assert (res.n, res.correct) == (3, 2)
    assert res.predicted == {1: 3}
    # p(B) over the four choices = e^2 / (e^2 + e + 2) on every question; B is right on 2 of 3, A on 1.
    p_a, p_b = math.e / (math.e ** 2 + math.e + 2), math.e ** 2 / (math.e ** 2 + math.e + 2)
    assert res.mean_gold_prob == pytest.approx((2 * p_b + p_a) / 3)
    # With its prior over positions taken out, a model that scores every question alike prefers nothing: the tie
    # goes to the first choice, A, right on 1 of 3.
    assert res.debiased_correct == 1 and res.debiased_accuracy == pytest.approx(1 / 3)
    assert res.by_subject["college_physics"].accuracy == 0.5
    assert res.by_group["STEM"].accuracy == pytest.approx(2 / 3)
    assert {k: (b.n, b.correct) for k, b in res.by_bucket.items()} == {("physics", 4): (2, 1), ("biology", 3): (1, 1)}
    report = probe_report([res], "run1", "ckpt", target_accuracy=0.9)
    got = {(b.discipline, b.difficulty): (b.n, round(b.accuracy, 3), round(b.deficit, 3)) for b in report.buckets}
    assert got == {("physics", 4): (2, 0.5, 0.4), ("biology", 3): (1, 1.0, -0.1)}


def test_single_token_fast_path_matches_full_sequence_scoring(tokenizer, tiny_model, tmp_path: Path) -> None:
    qs = read_mmlu(write_mmlu(tmp_path / "mmlu" / "test"))
    fast = choice_logliks(tiny_model, tokenizer, qs, batch_size=2)
    # Independent computation: each choice appended to the prompt, one sequence at a time, no padding.
    for q, got in zip(qs, fast):
        ctx = tokenizer(prompt_for(q), add_special_tokens=False)["input_ids"]
        want = []
        for cont in continuations(q):
            c = tokenizer(cont, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(tiny_model(torch.tensor([ctx + c])).logits[0].float(), -1)
            want.append(sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(c)))
        assert got == pytest.approx(np.array(want), abs=1e-4)


def mixed_length_questions(n: int = 7) -> list[MCQuestion]:
    """Questions whose prompts differ in length by tens of tokens, so a batch of them needs padding."""
    words = "the energy of a photon depends on its frequency and on nothing else in this setting".split()
    return [MCQuestion("mmlu", "college_physics", " ".join(words[: 2 + 3 * k] * (1 + k)), ("a", "b", "c", "d"), k % 4)
            for k in range(n)]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_batched_left_padded_fast_path_equals_one_question_at_a_time(tokenizer, attn: str) -> None:
    model = make_tiny_model(tokenizer, seed=1)
    model.config._attn_implementation = attn
    qs = mixed_length_questions()
    lengths = {len(tokenizer(prompt_for(q), add_special_tokens=False)["input_ids"]) for q in qs}
    assert len(lengths) == len(qs) and max(lengths) - min(lengths) > 20
    vocab_rows = []
    hook = model.lm_head.register_forward_hook(lambda mod, inp, out: vocab_rows.append(tuple(out.shape[:2])))
    batched = choice_logliks(model, tokenizer, qs, batch_size=4)
    hook.remove()
    # Only the last position of each row went through the vocabulary projection: batches of 4 and 3 questions.
    assert vocab_rows == [(4, 1), (3, 1)]
    one_by_one = choice_logliks(model, tokenizer, qs, batch_size=1)
    for got, want in zip(batched, one_by_one):
        assert got == pytest.approx(want, abs=1e-4)
    # And both equal the plain unpadded forward of each prompt.
    for q, got in zip(qs, batched):
        ctx = tokenizer(prompt_for(q), add_special_tokens=False)["input_ids"]
        conts = [tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in continuations(q)]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ctx])).logits[0, -1].float(), -1)
        assert got == pytest.approx(logp[conts].numpy(), abs=1e-4)


def test_left_padding_needs_position_ids(tokenizer) -> None:
    class NoPositions(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None):
            return SimpleNamespace(logits=torch.zeros(*input_ids.shape, len(tokenizer)))

    with pytest.raises(ValueError, match="position_ids"):
        choice_logliks(NoPositions(), tokenizer, mixed_length_questions(2), batch_size=2)


def test_bf16_probe_model_scores_close_to_fp32(tiny_spec: str) -> None:
    qs = mixed_length_questions(4)
    full, tok = load_probe_model(tiny_spec, "fp32")
    half, _ = load_probe_model(tiny_spec, "bf16")
    assert next(half.parameters()).dtype == torch.bfloat16
    for a, b in zip(choice_logliks(full, tok, qs, batch_size=4), choice_logliks(half, tok, qs, batch_size=4)):
        assert b.dtype == np.float64 and np.isfinite(b).all()
        assert b == pytest.approx(a, abs=0.1)  # bf16 keeps ~3 significant digits of ~-10.8
    with pytest.raises(ValueError, match="fp16"):
        load_probe_model(tiny_spec, "fp16")


def test_progress_is_reported_per_forward_pass_up_to_the_total(tokenizer, tiny_model) -> None:
    qs = mixed_length_questions(7)
    seen: list[tuple[int, int]] = []
    choice_logliks(tiny_model, tokenizer, qs, batch_size=3, on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(3, 7), (6, 7), (7, 7)]
    res = score(tiny_model, tokenizer, qs, batch_size=3)
    assert len(res.logliks) == 7 and all(len(ll) == 4 for ll in res.logliks)


def test_paired_comparison_counts_flips_and_mcnemar_by_hand(tmp_path: Path) -> None:
    spec = f"mmlu:{tmp_path}"
    def rows(picks):  # answers are 0, 1, 2, 3, 0, 1 on subject s
        return [{"benchmark": spec, "subject": "s", "row": i, "answer": i % 4, "pick": p} for i, p in enumerate(picks)]
    base = rows([0, 0, 0, 3, 3, 1])      # right on 0, 3, 5
    new = rows([0, 1, 2, 0, 0, 1])[:5]   # right on 0, 1, 2, 4; row 5 not scored again
    new[0]["benchmark"] = f"mmlu:{tmp_path}/."  # the same folder written another way
    (c,) = compare_per_question(base, new)
    assert (c.n, c.base_correct, c.new_correct, c.gained, c.lost) == (5, 2, 4, 3, 1)
    assert c.delta == pytest.approx(2 / 5)
    # exact McNemar: 2 * P(X <= 1), X ~ Binomial(4, 1/2) = 2 * 5/16
    assert c.p_value == pytest.approx(10 / 16)
    assert PairedComparison("b", 10, 0, 6, 6, 0).p_value == pytest.approx(2 / 64)
    assert PairedComparison("b", 10, 5, 5, 0, 0).p_value == 1.0
    assert compare_per_question(base, rows([0])[:0]) == []
    bad = rows([0])
    bad[0]["answer"] = 2
    with pytest.raises(ValueError, match="answer 0 in the baseline, 2 now"):
        compare_per_question(base, bad)


def letter_biased_logliks(answers: list[int], favourite: int, k: int = 4) -> list[np.ndarray]:
    """A model that puts 3 nats on one letter and 1 more on the right answer: it always picks its favourite."""
    out = []
    for a in answers:
        row = np.zeros(k)
        row[favourite] += 3.0
        row[a] += 1.0
        out.append(row - 10.0)
    return out


def test_debiased_picks_take_the_letter_prior_out() -> None:
    answers = [0, 1, 2, 3, 1, 2]
    ll = letter_biased_logliks(answers, favourite=0)
    assert [int(np.argmax(r)) for r in ll] == [0] * 6  # accuracy 1/6: the share of A among the answers
    # Column means of A (3 + 1/6) and of the others are subtracted; the right answer's +1 then wins every row.
    assert debiased_picks(ll).tolist() == answers
    # Questions with another number of choices get their own prior.
    two = letter_biased_logliks([1, 1, 0], favourite=1, k=2)
    assert debiased_picks(ll + two).tolist() == answers + [1, 1, 0]
    assert debiased_picks([]).tolist() == []


def test_paired_comparison_debiased_ignores_a_change_of_letter_bias(tmp_path: Path) -> None:
    spec = f"mmlu:{tmp_path}"
    answers = [0, 1, 2, 3, 2, 2, 1, 0]

    def rows(favourite: int) -> list[dict]:
        ll = letter_biased_logliks(answers, favourite)
        return [{"benchmark": spec, "subject": "s", "row": i, "answer": a, "pick": int(np.argmax(r)),
                 "logliks": r.tolist()} for i, (a, r) in enumerate(zip(answers, ll))]

    (plain,) = compare_per_question(rows(0), rows(2))  # the favourite letter moved from A to C
    assert (plain.base_correct, plain.new_correct, plain.gained, plain.lost) == (2, 3, 3, 2)
    (deb,) = compare_per_question(rows(0), rows(2), debiased=True)
    assert (deb.n, deb.base_correct, deb.new_correct, deb.gained, deb.lost) == (8, 8, 8, 0, 0)
    assert deb.p_value == 1.0
    no_ll = [{k: v for k, v in r.items() if k != "logliks"} for r in rows(0)]
    with pytest.raises(ValueError, match="no logliks"):
        compare_per_question(no_ll, rows(2), debiased=True)


def test_mcnemar_p_value_with_thousands_of_flips() -> None:
    # A moved letter bias flips thousands of questions; 2.0 ** m overflows a float past m = 1023.
    p = PairedComparison("b", 10_000, 0, 0, 1600, 1500).p_value
    # Normal approximation with continuity correction: z = (100 - 1) / sqrt(3100) = 1.778 -> p = 0.0754.
    assert p == pytest.approx(0.0754, abs=0.002)
    assert PairedComparison("b", 10_000, 0, 0, 1500, 1500).p_value == pytest.approx(1.0)
    assert PairedComparison("b", 10_000, 0, 0, 0, 3000).p_value == 0.0
