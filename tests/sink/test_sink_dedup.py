import numpy as np
from linksyn.common.text import word_tokens
from linksyn.sink.decontam import ContaminationIndex
from linksyn.sink.dedup import DedupIndex, MinHasher

from tests.sink.sink_fixtures import random_questions


def jaccard(a: str, b: str, k: int = 3) -> float:
    def sh(t):
        w = word_tokens(t)
        return {tuple(w[i : i + k]) for i in range(len(w) - k + 1)}

    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)


def test_signature_agreement_estimates_jaccard():
    m = MinHasher(num_perm=256, shingle_words=3)
    qs = random_questions(30, seed=1, words=30)
    variants = [q.replace(q.split()[5], "zebra", 1) for q in qs]
    sigs = m.signatures(qs + variants)
    for i in range(30):
        est = (sigs[i] == sigs[30 + i]).mean()
        assert abs(est - jaccard(qs[i], variants[i])) < 0.15
    assert (sigs[0] == sigs[1]).mean() < 0.1
    # Batch-independent: the same text gets the same signature alone or in a batch.
    assert np.array_equal(m.signatures([qs[3]])[0], sigs[3])


def test_short_texts_still_get_signatures():
    m = MinHasher(num_perm=64, shingle_words=5)
    s = m.signatures(["two words", "two words", "other pair"])
    assert np.array_equal(s[0], s[1]) and not np.array_equal(s[0], s[2])


def test_lsh_finds_near_duplicates_only():
    m = MinHasher(num_perm=128, shingle_words=3)
    idx = DedupIndex(threshold=0.7, num_perm=128)
    qs = random_questions(200, seed=2, words=25)
    sigs = m.signatures(qs)
    for i, s in enumerate(sigs):
        assert idx.near_duplicate_of(s) is None
        assert idx.add(i, s) == i
    near = qs[17].rsplit(" ", 3)[0] + " case seventeen again?"
    assert idx.near_duplicate_of(m.signatures([near])[0]) == 17
    assert idx.near_duplicate_of(m.signatures(random_questions(1, seed=99))[0]) is None


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


def test_contamination_of_chinese_text_by_characters():
    idx = ContaminationIndex(["一个物体从静止开始做匀加速直线运动，五秒后速度达到二十米每秒"], n=13, min_words=8)
    assert idx.contaminated(["题目：一个物体从静止开始做匀加速直线运动，五秒后速度达到二十米每秒。", "牛顿第二定律是什么"]).tolist() == [True, False]
