"""Exact and near-duplicate detection across the whole stream (in memory; the sink persists and restores it).

Exact: a 64-bit hash of the normalised question. Near: MinHash signatures of word shingles, computed for a whole
batch in numpy with datasketch's permutations (affine32 scheme), and LSH banding with datasketch's choice of
(bands, rows) for the threshold; an LSH candidate counts as a duplicate only if the signatures' estimated Jaccard
similarity reaches the threshold.

The band keys of a whole batch are computed in numpy and kept in one dict per band. datasketch's own MinHashLSH
object does the same per record in Python (about 150 us per insert or query here; `bench/synth.py` measures
both), which capped the sink at a few thousand records per second.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from datasketch import MinHash
from datasketch.lsh import _optimal_param
from linksyn.common.ids import content_id
from linksyn.common.text import normalise_text
from linksyn.sink.ngrams import WordHasher, gram_hashes, whole_text_hashes

MINHASH_SEED = 1
_CHUNK = 1 << 16  # shingles per vectorised pass (bounds the (chunk, perm) temporary)


def id64(hex_id: str) -> int:
    """A record id (hex) as a 64-bit int for compact sets."""
    return int(hex_id[:16], 16)


def question_hash(question: str) -> int:
    """64-bit hash of the normalised question: the exact-duplicate key."""
    return id64(content_id("question", normalise_text(question)))


class MinHasher:
    """Batch MinHash signatures (uint32, num_perm columns) of texts' word shingles."""

    def __init__(self, num_perm: int = 128, shingle_words: int = 3, seed: int = MINHASH_SEED) -> None:
        self.num_perm = num_perm
        self.shingle_words = shingle_words
        self.seed = seed
        a, b = MinHash(num_perm=num_perm, seed=seed).permutations
        self.a = a.astype(np.uint32)
        self.b = b.astype(np.uint32)
        self.hasher = WordHasher()

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), num_perm) uint32. A text shorter than a shingle is one shingle of all its words."""
        n = len(texts)
        words, owners = self.hasher.words(texts)
        g, o = gram_hashes(words, owners, self.shingle_words)
        has = np.zeros(n, dtype=bool)
        has[o] = True
        wh, wo = whole_text_hashes(words, owners, n)
        short = ~has[wo]
        g = np.concatenate([g, wh[short]])
        o = np.concatenate([o, wo[short]])
        order = np.argsort(o, kind="stable")
        g = (g[order] ^ (g[order] >> np.uint64(32))).astype(np.uint32)
        o = o[order]
        sig = np.full((n, self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        for start in range(0, len(g), _CHUNK):
            gs, os_ = g[start : start + _CHUNK], o[start : start + _CHUNK]
            phv = gs[:, None] * self.a[None, :] + self.b[None, :]  # uint32 wraps: affine32 permutations
            bounds = np.flatnonzero(np.r_[True, os_[1:] != os_[:-1]])
            mins = np.minimum.reduceat(phv, bounds, axis=0)
            rows = os_[bounds]
            sig[rows] = np.minimum(sig[rows], mins)
        return sig


_BAND_MULT = np.uint64(0x100000001B3)


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) minimising false positives + negatives at `threshold` (datasketch's optimiser)."""
    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: a hash of each band's `rows` signature values."""
    s = sigs[:, : bands * rows].reshape(len(sigs), bands, rows).astype(np.uint64)
    acc = np.zeros((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(rows):
            acc = acc * _BAND_MULT + s[:, :, j]
    return acc


class DedupIndex:
    """What the stream has seen: record ids, exact question hashes, and the near-duplicate LSH over kept records."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128) -> None:
        self.threshold = threshold
        self.num_perm = num_perm
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.seen_ids: set[int] = set()
        """Ids of every record decided (kept or dropped): a record seen again is a replay."""
        self.question_hashes: set[int] = set()
        self._tables: list[dict[int, list[int]]] = [{} for _ in range(self.bands)]
        self._sigs = np.empty((0, num_perm), dtype=np.uint32)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def keys(self, sigs: np.ndarray) -> np.ndarray:
        """Band keys of a batch of signatures (pass a row of it to `near_duplicate_of` and `add`)."""
        return band_keys(np.atleast_2d(sigs), self.bands, self.rows)

    def near_duplicate_of(self, sig: np.ndarray, keys: np.ndarray | None = None) -> int | None:
        """Index of a kept record whose estimated Jaccard similarity to `sig` reaches the threshold, or None."""
        if not self._n:
            return None
        if keys is None:
            keys = self.keys(sig)[0]
        cands: set[int] = set()
        for table, k in zip(self._tables, keys.tolist()):
            hit = table.get(k)
            if hit:
                cands.update(hit)
        if not cands:
            return None
        idx = np.fromiter(cands, dtype=np.int64, count=len(cands))
        sim = (self._sigs[idx] == sig[None, :]).mean(axis=1)
        best = int(np.argmax(sim))
        return int(idx[best]) if sim[best] >= self.threshold else None

    def _append(self, qhash: int, sig: np.ndarray, keys: np.ndarray) -> int:
        if self._n == len(self._sigs):
            grown = np.empty((max(1024, 2 * len(self._sigs)), self.num_perm), dtype=np.uint32)
            grown[: self._n] = self._sigs[: self._n]
            self._sigs = grown
        i = self._n
        self._sigs[i] = sig
        for table, k in zip(self._tables, keys.tolist()):
            table.setdefault(k, []).append(i)
        self.question_hashes.add(qhash)
        self._n += 1
        return i

    def add(self, qhash: int, sig: np.ndarray, keys: np.ndarray | None = None) -> int:
        """Index a kept record; returns its position."""
        return self._append(qhash, sig, self.keys(sig)[0] if keys is None else keys)

    def restore(self, seen_ids: np.ndarray, qhashes: np.ndarray, sigs: np.ndarray) -> None:
        """Load persisted state (called once, before any record, with every chunk's arrays concatenated)."""
        self.seen_ids.update(seen_ids.tolist())
        if len(sigs) and sigs.shape[1] != self.num_perm:
            raise ValueError(f"persisted signatures have {sigs.shape[1]} permutations, config says {self.num_perm}")
        keys = self.keys(sigs) if len(sigs) else np.empty((0, self.bands), np.uint64)
        for q, s, k in zip(qhashes.tolist(), sigs, keys):
            self._append(q, s, k)
