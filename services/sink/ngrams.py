"""Hashed word n-grams of many texts at once (numpy), for near-duplicate shingles and decontamination.

Words come hashed from linksyn.sink.tokens; an n-gram's hash is a polynomial over its word hashes, computed for every
position of the concatenated texts in n vectorised passes, and positions whose n-gram would cross from one text into
the next are masked out. Hashes are stable across processes (persisted state relies on it).
"""

from __future__ import annotations

import numpy as np

_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant: the polynomial base


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
