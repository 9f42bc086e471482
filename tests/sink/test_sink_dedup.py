import numpy as np
import pytest
from linksyn.common.text import word_tokens
from linksyn.sink.decontam import ContaminationIndex
from linksyn.sink.dedup import MinHasher, NearDupWindow, jaccard_estimate, min_agreement, short_signatures
from linksyn.sink.tokens import text_words

from tests.sink.sink_fixtures import random_questions


def jaccard(a: str, b: str, k: int = 3) -> float:
    def sh(t):
        w = word_tokens(t)
        return {tuple(w[i : i + k]) for i in range(len(w) - k + 1)}

    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)


def signatures(m: MinHasher, texts: list[str]) -> np.ndarray:
    w = text_words(texts)
    return m.signatures(w.hashes, w.owners, len(texts))


def test_signature_agreement_estimates_jaccard():
    m = MinHasher(num_perm=256, shingle_words=3)
    qs = random_questions(30, seed=1, words=30)
    variants = [q.replace(q.split()[5], "zebra", 1) for q in qs]
    sigs = signatures(m, qs + variants)
    short = short_signatures(sigs)
    for i in range(30):
        truth = jaccard(qs[i], variants[i])
        assert abs((sigs[i] == sigs[30 + i]).mean() - truth) < 0.15
        assert abs(jaccard_estimate(short[i], short[30 + i]) - truth) < 0.15  # the 8-bit form, chance taken out
    assert (sigs[0] == sigs[1]).mean() < 0.1
    # Batch-independent: the same text gets the same signature alone or in a batch.
    assert np.array_equal(signatures(m, [qs[3]])[0], sigs[3])


def test_short_and_empty_texts_still_get_signatures():
    m = MinHasher(num_perm=64, shingle_words=5)
    s = signatures(m, ["two words", "two words", "other pair", ""])
    assert np.array_equal(s[0], s[1]) and not np.array_equal(s[0], s[2])
    assert (s[3] == np.iinfo(np.uint32).max).all()


def test_min_agreement_takes_chance_out():
    # J = 0.8 agrees on 0.8 + 0.2/256 of the positions: 103 of 128 (not 102.4 -> 102)
    assert min_agreement(0.8, 128) == 103 and min_agreement(1.0, 128) == 128


def window_with(qs, capacity=1000, threshold=0.7):
    m = MinHasher(num_perm=128, shingle_words=3)
    w = NearDupWindow(capacity, threshold, 128)
    sigs = signatures(m, qs)
    return m, w, sigs


def test_window_finds_near_duplicates_only():
    qs = random_questions(200, seed=2, words=25)
    m, w, sigs = window_with(qs)
    near = w.screen(w.keys(sigs), short_signatures(sigs), np.ones(len(qs), dtype=bool))
    assert not near.any() and len(w) == 200
    variant = qs[17].rsplit(" ", 3)[0] + " case seventeen again?"
    other = random_questions(1, seed=99)[0]
    probe = signatures(m, [variant, other])
    assert w.screen(w.keys(probe), short_signatures(probe), np.ones(2, dtype=bool)).tolist() == [True, False]
    assert len(w) == 201  # the new question went in, the near duplicate did not


def test_window_catches_duplicates_inside_a_batch_and_skips_what_is_not_todo():
    q = random_questions(1, seed=3, words=30)[0]
    m, w, sigs = window_with([q, q + " again", q])
    near = w.screen(w.keys(sigs), short_signatures(sigs), np.array([True, True, False]))
    assert near.tolist() == [False, True, False] and len(w) == 1


def test_window_forgets_the_oldest_generation_and_restores_the_same_contents():
    qs = random_questions(50, seed=4, words=25)
    m, w, sigs = window_with(qs, capacity=20)
    keys, short = w.keys(sigs), short_signatures(sigs)
    w.screen(keys, short, np.ones(50, dtype=bool))
    assert len(w) == 20  # two generations of 10: records 30..49

    def held(window: NearDupWindow) -> list[bool]:
        """Which of the 50 the window holds (each probed alone, first the held ones, so probes add nothing held)."""
        return [bool(window.screen(keys[i : i + 1], short[i : i + 1], np.ones(1, dtype=bool))[0])
                for i in range(49, -1, -1)][::-1]

    # Rebuilt from the 50 kept records as a restore does: the same records are held.
    r = NearDupWindow(20, 0.7, 128)
    span = r.restore_span(50)
    assert span == 20
    r.add(keys[-span:], short[-span:])
    assert held(r)[30:] == [True] * 20
    assert held(w)[30:] == [True] * 20


@pytest.mark.parametrize("kept,span", [(0, 0), (7, 7), (10, 10), (11, 11), (20, 20), (21, 11), (30, 20), (31, 11)])
def test_restore_span_follows_the_rotation(kept, span):
    assert NearDupWindow(20, 0.8, 128).restore_span(kept) == span


def test_contamination_by_13_grams_and_whole_short_questions():
    long_q = "A car accelerates uniformly from rest to 20 m/s in 5 seconds on a straight level road"
    short_q = "Which of the following is a vector quantity today"
    idx = ContaminationIndex([long_q, short_q, "too short"], n=13, min_words=8)
    texts = [
        "Consider this: a car accelerates uniformly from rest to 20 m/s in 5 seconds on a straight, level road. Find a.",
        "Quiz. which of the following is a VECTOR quantity today?",
        "A car accelerates quickly on a road.",
        "too short",
        "",
    ]
    assert idx.contaminated(texts).tolist() == [True, True, False, False, False]


def test_contamination_bitmap_lets_nothing_through_that_the_array_holds():
    evals = random_questions(3000, seed=5, words=20)
    idx = ContaminationIndex(evals, n=13, min_words=8)
    leaked = [f"Intro words here. {q} And more." for q in evals[::7]]
    clean = random_questions(500, seed=6, words=20)
    got = idx.contaminated(leaked + clean)
    assert got[: len(leaked)].all() and not got[len(leaked):].any()


def test_contamination_of_chinese_text_by_characters():
    idx = ContaminationIndex(["一个物体从静止开始做匀加速直线运动，五秒后速度达到二十米每秒"], n=13, min_words=8)
    assert idx.contaminated(["题目：一个物体从静止开始做匀加速直线运动，五秒后速度达到二十米每秒。", "牛顿第二定律是什么"]).tolist() == [True, False]
