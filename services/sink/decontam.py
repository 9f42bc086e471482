"""n-gram decontamination: does a text share a word n-gram with any evaluation question? (pure, numpy)

The evaluation side is one sorted array of n-gram hashes, with a bitmap of their top bits in front (16 bits per
n-gram: it fits the CPU's cache, and lets about 1 in 16 absent n-grams through), so a batch's n-grams are first
tested against the bitmap and only those it lets through are searched in the array. An evaluation question shorter
than n words (but at least `min_words`) is matched as a whole: the texts are also cut into grams of each such length.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from linksyn.sink.ngrams import gram_hashes, whole_text_hashes
from linksyn.sink.tokens import text_words


class ContaminationIndex:
    """Hashed word n-grams of evaluation questions."""

    def __init__(self, eval_texts: Sequence[str], n: int = 13, min_words: int = 8) -> None:
        if min_words > n:
            raise ValueError(f"min_words ({min_words}) must be <= n ({n})")
        self.n = n
        w = text_words(eval_texts)
        words, owners = w.hashes, w.owners
        grams, _ = gram_hashes(words, owners, n)
        lengths = np.bincount(owners, minlength=len(eval_texts))
        short = (lengths >= min_words) & (lengths < n)
        whole, whole_owner = whole_text_hashes(words, owners, len(eval_texts))
        whole = whole[short[whole_owner]]
        self.grams = np.unique(np.concatenate([grams, whole]))
        self.short_lengths = sorted(int(x) for x in np.unique(lengths[short]))
        self.eval_texts = len(eval_texts)
        bits = max(10, int(np.ceil(np.log2(max(1, len(self.grams)) * 16))))
        self._shift = np.uint64(64 - bits)
        self._bitmap = np.zeros(1 << (bits - 3), dtype=np.uint8)
        top = self.grams >> self._shift
        np.bitwise_or.at(self._bitmap, (top >> np.uint64(3)).astype(np.int64),
                         (np.uint8(1) << (top & np.uint64(7)).astype(np.uint8)))

    def __len__(self) -> int:
        return len(self.grams)

    @property
    def nbytes(self) -> int:
        return self.grams.nbytes + self._bitmap.nbytes

    def contaminated(self, texts: Sequence[str]) -> np.ndarray:
        """Bool per text: shares at least one n-gram (or a whole short eval question) with the evaluation sets."""
        w = text_words(texts)
        return self.contaminated_words(w.hashes, w.owners, len(texts))

    def contaminated_words(self, words: np.ndarray, owners: np.ndarray, n_texts: int) -> np.ndarray:
        """`contaminated` of texts given as word hashes with their text index (in text order)."""
        out = np.zeros(n_texts, dtype=bool)
        if not len(self.grams) or not n_texts:
            return out
        for length in [self.n, *self.short_lengths]:
            g, o = gram_hashes(words, owners, length)
            if not len(g):
                continue
            top = g >> self._shift
            maybe = (self._bitmap[(top >> np.uint64(3)).astype(np.int64)] >> (top & np.uint64(7)).astype(np.uint8)) & 1
            g, o = g[maybe.astype(bool)], o[maybe.astype(bool)]
            if not len(g):
                continue
            idx = np.minimum(np.searchsorted(self.grams, g), len(self.grams) - 1)
            out[o[self.grams[idx] == g]] = True
        return out

