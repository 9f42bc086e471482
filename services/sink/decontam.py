"""n-gram decontamination: does a text share a word n-gram with any evaluation question? (pure, numpy)

The evaluation side is one sorted array of n-gram hashes; a batch of texts is checked with one searchsorted over all
its n-grams. An evaluation question shorter than n words (but at least `min_words`) is matched as a whole: the
texts are also cut into grams of each such length.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from linksyn.sink.ngrams import WordHasher, gram_hashes, whole_text_hashes


class ContaminationIndex:
    """Hashed word n-grams of evaluation questions."""

    def __init__(self, eval_texts: Sequence[str], n: int = 13, min_words: int = 8) -> None:
        if min_words > n:
            raise ValueError(f"min_words ({min_words}) must be <= n ({n})")
        self.n = n
        self.hasher = WordHasher()
        words, owners = self.hasher.words(eval_texts)
        grams, _ = gram_hashes(words, owners, n)
        lengths = np.bincount(owners, minlength=len(eval_texts))
        short = (lengths >= min_words) & (lengths < n)
        whole, whole_owner = whole_text_hashes(words, owners, len(eval_texts))
        whole = whole[short[whole_owner]]
        self.grams = np.unique(np.concatenate([grams, whole]))
        self.short_lengths = sorted(int(x) for x in np.unique(lengths[short]))
        self.eval_texts = len(eval_texts)

    def __len__(self) -> int:
        return len(self.grams)

    def contaminated(self, texts: Sequence[str]) -> np.ndarray:
        """Bool per text: shares at least one n-gram (or a whole short eval question) with the evaluation sets."""
        out = np.zeros(len(texts), dtype=bool)
        if not len(self.grams) or not texts:
            return out
        words, owners = self.hasher.words(texts)
        for length in [self.n, *self.short_lengths]:
            g, o = gram_hashes(words, owners, length)
            if not len(g):
                continue
            order = np.argsort(g)  # sorted queries walk the eval array in order (cache-friendly)
            g, o = g[order], o[order]
            idx = np.minimum(np.searchsorted(self.grams, g), len(self.grams) - 1)
            out[o[self.grams[idx] == g]] = True
        return out
