"""Discipline and difficulty of Chinese seeds without an embedder that reads Chinese.

The keyphrase extractor's classifiers read MiniLM vectors, and all-MiniLM-L6-v2 maps most Chinese characters to
[UNK]: on Chinese seeds its nearest-centroid discipline is no better than chance. For a mostly-Chinese seed:

- discipline (`KeywordClassifier`): the taxonomy's keyword lexicon (`keywords:` in taxonomy.yaml, subdiscipline ->
  marker words). Every keyword occurrence in the folded text (leftmost-longest, one regex pass) adds the keyword's
  IDF (jieba's table: rarer words are more specific) to each subdiscipline that lists it; the best-scoring
  subdiscipline wins, its discipline with it. No keyword found: no prediction (the caller falls back to the
  embedder's guess).
- difficulty (`chinese_difficulty`): a heuristic, not a fitted model (no labelled Chinese data outside the
  evaluation sets): high school by default, moved by the share of the content words that are rare (IDF >= RARE_IDF:
  specialised vocabulary) and by a long stem. bench/kp_quality.py reports how it agrees with CMMLU's implied levels.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Sequence

from linksyn.common.taxonomy import Taxonomy
from linksyn.common.text import fold_compat
from linksyn.extractor.segment import ChineseSegmenter, is_content_word

RARE_IDF = 10.0
"""Content words with at least this IDF in jieba's table count as specialised (common words sit near 5-8)."""


class KeywordClassifier:
    """(discipline, subdiscipline) of Chinese texts from the taxonomy's keywords. Immutable; thread-safe."""

    def __init__(self, taxonomy: Taxonomy, segmenter: ChineseSegmenter) -> None:
        self.taxonomy = taxonomy
        owners: dict[str, list[str]] = defaultdict(list)
        for sub, words in taxonomy.keywords.items():
            for w in words:
                owners[fold_compat(w).lower()].append(sub)
        self._owners = dict(owners)
        self._weight = {w: segmenter.idf_of(w) for w in owners}
        words = sorted(owners, key=len, reverse=True)  # longest first: the regex alternation is leftmost-first
        self._pattern = re.compile("|".join(map(re.escape, words))) if words else None

    def scores(self, text: str) -> dict[str, float]:
        """Subdiscipline -> summed IDF of its keywords found in `text`."""
        out: dict[str, float] = defaultdict(float)
        if self._pattern is None:
            return out
        for m in self._pattern.finditer(fold_compat(text).lower()):
            kw = m.group(0)
            for sub in self._owners[kw]:
                out[sub] += self._weight[kw]
        return out

    def classify(self, text: str) -> tuple[str, str] | None:
        """The best subdiscipline's (discipline, subdiscipline), or None when no keyword occurs; ties go to the
        subdiscipline listed first in the taxonomy."""
        scores = self.scores(text)
        if not scores:
            return None
        order = {s: i for i, s in enumerate(self.taxonomy.subdiscipline_names())}
        best = max(scores, key=lambda s: (scores[s], -order.get(s, 0)))
        return self.taxonomy.discipline_of(best) or "", best


def chinese_difficulty(question: str, segmenter: ChineseSegmenter) -> int:
    """Grade 1-5 of a Chinese question from its vocabulary: high school (3), one up when at least half its content
    words are rare (IDF >= RARE_IDF), one down when under a fifth are, one up for a long stem (over 150
    characters), clipped to 1-5."""
    words = [w for w in segmenter.words(question) if is_content_word(w)]
    if not words:
        return 3
    rare = sum(segmenter.idf_of(w.text) >= RARE_IDF for w in words) / len(words)
    level = 3 + (rare >= 0.5) - (rare < 0.2) + (len(question) > 150)
    return max(1, min(5, level))


def chinese_difficulties(questions: Sequence[str], segmenter: ChineseSegmenter) -> list[int]:
    return [chinese_difficulty(q, segmenter) for q in questions]
