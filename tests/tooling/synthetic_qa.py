"""A synthetic stream of SynthQA records with planted exact duplicates, near duplicates and replays, and the truth
about each one, for the sink's tests and bench/scale.py.

Deterministic (a seed gives the same stream in any process) and streaming: memory is bounded by `recent` (the
questions that later records may copy), whatever the stream's length. Kinds of record:
- `base`: a new question, 14-40 words drawn from a Zipf-distributed vocabulary, and an answer;
- `exact`: an earlier base question in another case and spacing, with another answer (so another id): the sink must
  drop it as a duplicate;
- `near`: an earlier base question with one word replaced (the last word: Jaccard similarity of 3-word shingles about
  0.9; or a middle word: about 0.7-0.85, so some fall below a 0.8 threshold); its exact Jaccard similarity to the
  base is computed here, with the sink's definition of words and shingles;
- `replay`: an earlier record again, byte for byte (same id): redelivery, which the sink must skip.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from linksyn.common import modes
from linksyn.common.ids import content_id
from linksyn.common.text import ngram_set, word_tokens
from linksyn.v1 import records_pb2

BASE, EXACT, NEAR, REPLAY = "base", "exact", "near", "replay"


@dataclass(frozen=True)
class Planted:
    """The truth about one record of the stream."""

    index: int
    kind: str
    source: int
    """Index of the record it copies (-1 for a base)."""
    jaccard: float
    """Exact Jaccard similarity of its question's 3-word shingles to its source's (1.0 for exact and replay)."""


def vocabulary(size: int, seed: int) -> list[str]:
    """`size` distinct pronounceable words."""
    rng = random.Random(seed)
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def shingle_jaccard(a: str, b: str, k: int = 3) -> float:
    x, y = ngram_set(word_tokens(a), k), ngram_set(word_tokens(b), k)
    return len(x & y) / len(x | y) if x | y else 1.0


class SyntheticQA:
    """The stream (see the module docstring). Iterate `records()` for (SynthQA, Planted) pairs."""

    def __init__(self, n: int, seed: int = 0, exact_share: float = 0.05, near_share: float = 0.05,
                 replay_share: float = 0.01, vocab: int = 20_000, recent: int = 100_000) -> None:
        self.n = n
        self.seed = seed
        self.exact_share = exact_share
        self.near_share = near_share
        self.replay_share = replay_share
        self.words = vocabulary(vocab, seed)
        self.recent = recent
        # Zipf-like word weights (s = 1): a few common words, a long tail. Words are drawn a block at a time.
        weights = 1.0 / np.arange(1, vocab + 1)
        self._p = weights / weights.sum()

    def records(self) -> Iterator[tuple[records_pb2.SynthQA, Planted]]:
        rng = random.Random(self.seed)
        self._draws = np.random.default_rng(self.seed)
        self._block: list[str] = []
        self._at = 0
        bases: deque[tuple[int, str]] = deque(maxlen=self.recent)
        emitted: deque[tuple[int, bytes]] = deque(maxlen=self.recent)
        for i in range(self.n):
            r = rng.random()
            if bases and r < self.replay_share and emitted:
                j, raw = emitted[rng.randrange(len(emitted))]
                yield records_pb2.SynthQA.FromString(raw), Planted(i, REPLAY, j, 1.0)
                continue
            r -= self.replay_share
            if bases and r < self.exact_share:
                j, q = bases[rng.randrange(len(bases))]
                variant = "  ".join(q.upper().split(" ")) if rng.random() < 0.5 else q.title() + " "
                qa = self._qa(i, variant, f"another answer {i}")
                planted = Planted(i, EXACT, j, 1.0)
            elif bases and r < self.exact_share + self.near_share:
                j, q = bases[rng.randrange(len(bases))]
                w = q[:-1].split(" ")  # drop the "?"
                pos = len(w) - 1 if rng.random() < 0.5 else rng.randrange(3, len(w) - 3)
                w[pos] = self._words(rng, 1)[0] + "x"  # never the word it replaces
                variant = " ".join(w) + "?"
                qa = self._qa(i, variant, f"answer {i}")
                planted = Planted(i, NEAR, j, shingle_jaccard(q, variant))
            else:
                q = " ".join(self._words(rng, rng.randint(14, 40))) + "?"
                qa = self._qa(i, q, " ".join(self._words(rng, rng.randint(3, 30))))
                bases.append((i, q))
                planted = Planted(i, BASE, -1, 0.0)
            emitted.append((i, qa.SerializeToString()))
            yield qa, planted

    def _words(self, rng: random.Random, k: int) -> list[str]:
        if self._at + k > len(self._block):
            idx = self._draws.choice(len(self.words), size=1 << 16, p=self._p)
            self._block = [self.words[i] for i in idx.tolist()]
            self._at = 0
        self._at += k
        return self._block[self._at - k : self._at]

    @staticmethod
    def _qa(i: int, question: str, answer: str) -> records_pb2.SynthQA:
        return records_pb2.SynthQA(
            id=content_id("synth-qa", question, answer), question=question, answer=answer, rationale="",
            kps=["kp"], discipline=("mathematics", "physics", "history")[i % 3], difficulty=1 + i % 5,
            path_id=f"path-{i}", source_seed_ids=[f"seed-{i}", f"seed-{i + 1}"], models=["gen-model"],
            prompt_version="link-v1", prompt_tokens=300, completion_tokens=80, mode=modes.LINK, lang="en",
        )
