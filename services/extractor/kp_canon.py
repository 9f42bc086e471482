"""Knowledge-point vocabulary: near-synonym merging of KPs already in canonical form.

`KPCanon` keeps a vocabulary of canonical KPs (linksyn.common.kp_form.canonical_form) with their embeddings. A new
form whose cosine similarity to a known KP reaches the threshold is mapped to that KP (near-synonyms: "pythagoras
theorem" -> "pythagorean theorem"); otherwise it joins the vocabulary. The first spelling seen becomes the canonical
one, and a form is embedded only once (later occurrences are dictionary hits). New forms of a whole batch are
embedded in one call and compared with the vocabulary in one matrix product per block of the vocabulary (not one
product per form); only forms with a similar form earlier in the same batch need an ordered pass, so the result
equals admitting the forms one at a time in order.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, Sequence

import numpy as np
from linksyn.common.kp_form import canonical_form

Encode = Callable[[Sequence[str]], np.ndarray]
"""texts -> (n, dim) unit-norm float32 rows (MiniLMEmbedder.encode)."""

_ADMIT_CHUNK = 2048
"""New forms compared in one go (their pairwise similarity matrix is chunk x chunk)."""
_VOCAB_BLOCK = 8192
"""Vocabulary rows per matrix product (bounds the chunk x block similarity matrix at 64 MB)."""


class KPCanon:
    """Maps KP strings to canonical KPs, merging near-synonyms. Thread-safe; keeps its vocabulary for its life.

    Memory: one float32 row of `dim` per canonical KP (1.5 KB for MiniLM): a million distinct KPs take 1.5 GB.
    Cost: exact search, new forms x vocabulary x dim multiply-adds per batch (blocked matrix products): fine to a
    few hundred thousand KPs; beyond that an approximate nearest-neighbour index would be needed.
    """

    def __init__(self, encode: Encode | None, threshold: float = 0.92, dim: int = 384) -> None:
        if encode is not None and not 0.0 < threshold <= 1.0:
            raise ValueError(f"merge threshold must be in (0, 1], got {threshold}")
        self._encode = encode
        self.threshold = threshold
        self._alias: dict[str, str] = {}  # canonical form -> canonical KP
        self._kps: list[str] = []
        self._vecs = np.zeros((64, dim), dtype=np.float32)
        self._lock = threading.Lock()
        self.merged = 0
        """Forms mapped onto a different, similar KP so far."""

    @property
    def vocabulary(self) -> list[str]:
        return list(self._kps)

    def __len__(self) -> int:
        return len(self._kps)

    def canonicalise(self, kp_lists: Sequence[Sequence[str]]) -> list[list[str]]:
        """Canonical KPs for each list (order kept, duplicates within a list dropped); one embedding call for
        every form not seen before."""
        forms = [[f for f in (canonical_form(k) for k in kps) if f] for kps in kp_lists]
        with self._lock:
            new = list(dict.fromkeys(f for fs in forms for f in fs if f not in self._alias))
            if new:
                self._admit(new)
            return [list(dict.fromkeys(self._alias[f] for f in fs)) for fs in forms]

    def _admit(self, new: list[str]) -> None:
        if self._encode is None:  # merging switched off: the canonical form is the KP
            for f in new:
                self._alias[f] = f
                self._kps.append(f)
            return
        vecs = np.asarray(self._encode(new), dtype=np.float32)
        for start in range(0, len(new), _ADMIT_CHUNK):
            self._admit_chunk(new[start : start + _ADMIT_CHUNK], vecs[start : start + _ADMIT_CHUNK])

    def _admit_chunk(self, forms: list[str], vecs: np.ndarray) -> None:
        n_known = len(self._kps)
        # Best match of every new form among the KPs known before this chunk, one product per vocabulary block.
        best_sim = np.full(len(forms), -np.inf, dtype=np.float32)
        best_idx = np.zeros(len(forms), dtype=np.int64)
        for b in range(0, n_known, _VOCAB_BLOCK):
            sims = vecs @ self._vecs[b : min(n_known, b + _VOCAB_BLOCK)].T
            j = np.argmax(sims, axis=1)
            s = sims[np.arange(len(forms)), j]
            better = s > best_sim  # strict: on ties the earlier KP wins, as argmax over the whole vocabulary
            best_sim[better], best_idx[better] = s[better], j[better] + b
        # Forms of this chunk that may merge onto an earlier form of the same chunk need the ordered pass.
        within = vecs @ vecs.T
        peer = np.tril(within >= self.threshold, k=-1).any(axis=1)
        admitted: list[int] = []  # chunk positions of forms that became KPs, in order
        for i, form in enumerate(forms):
            sim, target = float(best_sim[i]), int(best_idx[i])
            if peer[i] and admitted:
                row = within[i, admitted]
                k = int(np.argmax(row))
                if row[k] > sim:  # an earlier KP of the vocabulary wins a tie
                    sim, target = float(row[k]), n_known + k
            if sim >= self.threshold:
                self._alias[form] = self._kps[target]
                self.merged += 1
                continue
            n = len(self._kps)
            if n == len(self._vecs):
                self._vecs = np.concatenate([self._vecs, np.zeros_like(self._vecs)])
            self._vecs[n] = vecs[i]
            self._kps.append(form)
            self._alias[form] = form
            admitted.append(i)

    def seed(self, kps: Iterable[str]) -> None:
        """Pre-load known canonical KPs (e.g. from a graph snapshot) so new seeds map onto them."""
        self.canonicalise([list(kps)])
