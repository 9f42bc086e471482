"""The compiled word scanner (linksyn.sink.tokens) finds exactly `word_tokens`'s words."""

from __future__ import annotations

import random
import sys

from linksyn.common.text import word_tokens
from linksyn.sink.tokens import text_words

PIECES = ["abc", "Hello", "wörld", "x_y", "3.14", "中文", "东京", "abc中文", "中文abc", "①", "Ⅻ", "ﬁne", "ÀÉÎ", "ＡＢＣ",
          "foo-bar", "İstanbul", "ΣΑΣ", "straße", "🙂", "\u0301e", "e\u0301", "٣٤", "한국어", "𠀋", "  ", "\t\n", "_", "—"]


def check(texts):
    words = text_words(texts)
    got = [[] for _ in texts]
    for i in range(len(words.hashes)):
        got[int(words.owners[i])].append(words.text(i))
    assert got == [word_tokens(t) for t in texts]
    return words


def test_words_are_word_tokens_words():
    rng = random.Random(0)
    texts = ["".join(rng.choice(PIECES) + rng.choice(["", " ", "?", ",", "中"]) for _ in range(rng.randint(0, 12)))
             for _ in range(2000)]
    check(texts + ["", "   ", "中", "a"])


def test_random_code_points():
    rng = random.Random(1)
    cps = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    texts = ["".join(chr(rng.choice(cps)) if rng.random() < 0.5 else rng.choice("ab 中,") for _ in range(40))
             for _ in range(500)]
    check(texts)


def test_equal_words_hash_equal_and_texts_are_kept_apart():
    w = check(["the cat", "THE dog", "", "cat"])
    by_text = {w.text(i): int(w.hashes[i]) for i in range(len(w.hashes))}
    assert len(set(by_text.values())) == len(by_text)  # distinct words, distinct hashes
    assert w.owners.tolist() == [0, 0, 1, 1, 3]
    assert w.hashes[0] == w.hashes[2] and w.hashes[1] == w.hashes[4]
    # Stable across processes and versions: persisted state depends on these values.
    assert text_words(["LinkSyn 中"]).hashes.tolist() == [2638483213594171684, 17656280383180526657]
