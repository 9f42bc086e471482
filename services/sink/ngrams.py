"""Hashed word n-grams of many texts at once (numpy), for near-duplicate shingles and decontamination.

Each distinct word gets a 64-bit hash (blake2b, cached); an n-gram's hash is a polynomial over its word hashes,
computed for every position of the concatenated texts in n vectorised passes, and positions whose n-gram would
cross from one text into the next are masked out. Hashes are stable across processes (persisted state relies on it).
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
from linksyn.common.text import word_tokens

_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant: the polynomial base
_MAX_CACHE = 2_000_000


class WordHasher:
    """Texts -> concatenated word hashes with the text index of every word.

    Words are interned (one dict lookup per word); each distinct word is hashed once into a numpy table, so a
    batch's hashes are one fancy-index of that table.
    """

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._table = np.empty(1024, dtype=np.uint64)

    def _grow(self, new_words: list[str]) -> None:
        start = len(self._index)
        need = start + len(new_words)
        if need > len(self._table):
            table = np.empty(max(need, 2 * len(self._table)), dtype=np.uint64)
            table[:start] = self._table[:start]
            self._table = table
        for i, w in enumerate(new_words):
            self._index[w] = start + i
            self._table[start + i] = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")

    def words(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(word hashes uint64, text index int64) over all texts, in order."""
        tokens = [word_tokens(t) for t in texts]
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        flat = [w for t in tokens for w in t]
        index = self._index
        new = list(dict.fromkeys(w for w in flat if w not in index))
        if len(index) + len(new) > _MAX_CACHE:
            index.clear()  # bound memory on endless vocabularies; hashes are recomputed, never changed
            new = list(dict.fromkeys(flat))
        if new:
            self._grow(new)
            index = self._index
        ids = np.fromiter((index[w] for w in flat), dtype=np.int64, count=len(flat))
        return self._table[ids], np.repeat(np.arange(len(texts), dtype=np.int64), lengths)


def gram_hashes(words: np.ndarray, owners: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(hashes uint64, text index) of every word n-gram that lies within one text."""
    m = len(words) - n + 1
    if m <= 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    acc = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            acc = acc * _MULT + words[j : j + m]
        acc ^= np.uint64(n) * np.uint64(0xC2B2AE3D27D4EB4F)  # grams of different lengths never collide by design
    keep = owners[:m] == owners[n - 1 :]
    return acc[keep], owners[:m][keep]


def whole_text_hashes(words: np.ndarray, owners: np.ndarray, n_texts: int) -> tuple[np.ndarray, np.ndarray]:
    """One hash per non-empty text over all its words: the gram of a text shorter than the n-gram length,
    hashed exactly as `gram_hashes` hashes a gram of that length (so the two can be matched)."""
    lengths = np.bincount(owners, minlength=n_texts)
    out_h: list[np.ndarray] = []
    out_o: list[np.ndarray] = []
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for length in np.unique(lengths[lengths > 0]):
        texts = np.flatnonzero(lengths == length)
        idx = starts[texts][:, None] + np.arange(length)[None, :]
        acc = np.zeros(len(texts), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(int(length)):
                acc = acc * _MULT + words[idx[:, j]]
            acc ^= np.uint64(length) * np.uint64(0xC2B2AE3D27D4EB4F)
        out_h.append(acc)
        out_o.append(texts)
    if not out_h:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    return np.concatenate(out_h), np.concatenate(out_o)
