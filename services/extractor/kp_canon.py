"""Knowledge-point vocabulary: near-synonym merging of KPs already in canonical form, language by language.

`KPCanon` keeps a vocabulary of canonical KPs (linksyn.common.kp_form.canonical_form) per script class
(`linksyn.common.text.kp_script`: 'zh' for KPs with CJK characters, 'en' for Latin-script ones, '' for the rest).
A class is merged by embedding only with an embedder trained on that language (`MergeSpace.languages`; the packaged
all-MiniLM-L6-v2 reads English only, so unrelated Chinese KPs, mostly [UNK] tokens to it, would all look alike):
a new form whose cosine similarity to a known KP of its own class reaches the space's threshold is mapped to that
KP (near-synonyms: "pythagoras theorem" -> "pythagorean theorem"); otherwise it joins the vocabulary. A class
that no configured embedder covers merges by canonical form only. KPs of different scripts never merge by
embedding, whatever the embedder ("DNA replication" and "DNA复制" stay two KPs).

The first spelling seen becomes the canonical one, and a form is embedded only once (later occurrences are
dictionary hits). New forms of a whole batch are embedded in one call per class and compared with the class's
vocabulary in one matrix product per block of the vocabulary (not one product per form); only forms with a similar
form earlier in the same batch need an ordered pass, so the result equals admitting the forms one at a time in
order. Every merge decision is counted, and a bounded sample is kept for inspection (`merge_sample`).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
from linksyn.common.kp_form import canonical_form
from linksyn.common.text import kp_script

Encode = Callable[[Sequence[str]], np.ndarray]
"""texts -> (n, dim) unit-norm float32 rows (MiniLMEmbedder.encode, OpenAIEmbedder.encode)."""

_ADMIT_CHUNK = 2048
"""New forms compared in one go (their pairwise similarity matrix is chunk x chunk)."""
_VOCAB_BLOCK = 8192
"""Vocabulary rows per matrix product (bounds the chunk x block similarity matrix at 64 MB)."""


@dataclass(frozen=True)
class MergeSpace:
    """An embedder KPs of some languages are merged with, and its threshold."""

    encode: Encode
    languages: frozenset[str]
    """Script classes ('en', 'zh') whose KPs this embedder may compare (the languages it was trained on)."""
    threshold: float = 0.92
    """Cosine similarity at or above which a new KP maps onto a known one."""
    name: str = ""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"merge threshold of {self.name or 'an embedder'} must be in (0, 1], got {self.threshold}")


@dataclass(frozen=True)
class MergeDecision:
    """One form mapped onto another KP (for inspection)."""

    form: str
    kp: str
    similarity: float
    script: str


class _Vocabulary:
    """The KPs of one script class with their embeddings (None: merging by form only)."""

    def __init__(self, space: MergeSpace | None, script: str) -> None:
        self.space = space
        self.script = script
        self.kps: list[str] = []
        self.vecs: np.ndarray | None = None

    def admit(self, new: list[str], alias: dict[str, str], on_merge: Callable[[MergeDecision], None]) -> None:
        if self.space is None:
            for f in new:
                alias[f] = f
                self.kps.append(f)
            return
        vecs = np.asarray(self.space.encode(new), dtype=np.float32)
        if self.vecs is None:
            self.vecs = np.zeros((64, vecs.shape[1]), dtype=np.float32)
        for start in range(0, len(new), _ADMIT_CHUNK):
            self._admit_chunk(new[start : start + _ADMIT_CHUNK], vecs[start : start + _ADMIT_CHUNK], alias, on_merge)

    def _admit_chunk(self, forms: list[str], vecs: np.ndarray, alias: dict[str, str],
                     on_merge: Callable[[MergeDecision], None]) -> None:
        assert self.space is not None and self.vecs is not None
        threshold = self.space.threshold
        n_known = len(self.kps)
        # Best match of every new form among the KPs known before this chunk, one product per vocabulary block.
        best_sim = np.full(len(forms), -np.inf, dtype=np.float32)
        best_idx = np.zeros(len(forms), dtype=np.int64)
        for b in range(0, n_known, _VOCAB_BLOCK):
            sims = vecs @ self.vecs[b : min(n_known, b + _VOCAB_BLOCK)].T
            j = np.argmax(sims, axis=1)
            s = sims[np.arange(len(forms)), j]
            better = s > best_sim  # strict: on ties the earlier KP wins, as argmax over the whole vocabulary
            best_sim[better], best_idx[better] = s[better], j[better] + b
        # Forms of this chunk that may merge onto an earlier form of the same chunk need the ordered pass.
        within = vecs @ vecs.T
        peer = np.tril(within >= threshold, k=-1).any(axis=1)
        admitted: list[int] = []  # chunk positions of forms that became KPs, in order
        for i, form in enumerate(forms):
            sim, target = float(best_sim[i]), int(best_idx[i])
            if peer[i] and admitted:
                row = within[i, admitted]
                k = int(np.argmax(row))
                if row[k] > sim:  # an earlier KP of the vocabulary wins a tie
                    sim, target = float(row[k]), n_known + k
            if sim >= threshold:
                alias[form] = self.kps[target]
                on_merge(MergeDecision(form, self.kps[target], sim, self.script))
                continue
            n = len(self.kps)
            if n == len(self.vecs):
                self.vecs = np.concatenate([self.vecs, np.zeros_like(self.vecs)])
            self.vecs[n] = vecs[i]
            self.kps.append(form)
            alias[form] = form
            admitted.append(i)


class KPCanon:
    """Maps KP strings to canonical KPs, merging near-synonyms within a language. Thread-safe; keeps its vocabulary
    for its life.

    `spaces`: the embedders to merge with, each covering some script classes (the first that covers a class is
    used); an `Encode` callable alone is an English-only space with `threshold`; None or () merges by form only.

    Memory: one float32 row of the embedder's dimension per canonical KP of an embedded class (1.5 KB for MiniLM):
    a million distinct KPs take 1.5 GB. Cost: exact search, new forms x vocabulary x dim multiply-adds per batch
    (blocked matrix products): fine to a few hundred thousand KPs per class; beyond that an approximate
    nearest-neighbour index would be needed.
    """

    def __init__(self, spaces: Sequence[MergeSpace] | Encode | None = None, threshold: float = 0.92,
                 sample_size: int = 64, rng_seed: int = 0) -> None:
        if callable(spaces):
            spaces = [MergeSpace(spaces, frozenset({"en"}), threshold, "en")]
        self.spaces = list(spaces or ())
        self._vocab: dict[str, _Vocabulary] = {}
        self._alias: dict[str, str] = {}  # canonical form -> canonical KP
        self._lock = threading.Lock()
        self.merged = 0
        """Forms mapped onto a different, similar KP so far."""
        self.merged_by_script: dict[str, int] = {}
        self.sample_size = sample_size
        self.merge_sample: list[MergeDecision] = []
        """A uniform sample (reservoir) of at most sample_size merge decisions so far."""
        self._rng = random.Random(rng_seed)

    def space_for(self, script: str) -> MergeSpace | None:
        """The embedder KPs of a script class merge with (None: by canonical form only)."""
        return next((s for s in self.spaces if script and script in s.languages), None)

    @property
    def vocabulary(self) -> list[str]:
        return [kp for v in self._vocab.values() for kp in v.kps]

    def __len__(self) -> int:
        return sum(len(v.kps) for v in self._vocab.values())

    def canonicalise(self, kp_lists: Sequence[Sequence[str]]) -> list[list[str]]:
        """Canonical KPs for each list (order kept, duplicates within a list dropped); one embedding call per
        script class for every form not seen before."""
        forms = [[f for f in (canonical_form(k) for k in kps) if f] for kps in kp_lists]
        with self._lock:
            new = list(dict.fromkeys(f for fs in forms for f in fs if f not in self._alias))
            by_script: dict[str, list[str]] = {}
            for f in new:
                by_script.setdefault(kp_script(f), []).append(f)
            for script, group in by_script.items():
                vocab = self._vocab.get(script)
                if vocab is None:
                    vocab = self._vocab[script] = _Vocabulary(self.space_for(script), script)
                vocab.admit(group, self._alias, self._record)
            return [list(dict.fromkeys(self._alias[f] for f in fs)) for fs in forms]

    def _record(self, decision: MergeDecision) -> None:
        self.merged += 1
        self.merged_by_script[decision.script] = self.merged_by_script.get(decision.script, 0) + 1
        if len(self.merge_sample) < self.sample_size:
            self.merge_sample.append(decision)
        else:
            j = self._rng.randrange(self.merged)
            if j < self.sample_size:
                self.merge_sample[j] = decision

    def seed(self, kps: Iterable[str]) -> None:
        """Pre-load known canonical KPs (e.g. from a graph snapshot) so new seeds map onto them."""
        self.canonicalise([list(kps)])
