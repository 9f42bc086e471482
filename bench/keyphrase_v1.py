"""Frozen copy of the keyphrase extractor and KP merging as they were before the batched rewrite (keyphrase@v1),
kept only so bench/extract.py can measure the new implementation against the old one in the same process.
Not used by linksyn itself. (v1: one padded MiniLM pass per 64 seeds, per-seed candidate scoring and MMR,
readability difficulty; KPCanon v1: one matrix-vector product per new KP form.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from linksyn.common.taxonomy import Taxonomy
from linksyn.extractor.annotation import Annotation, Outcome, seed_labels
from linksyn.extractor.embedding import MiniLMEmbedder
from linksyn.v1.records_pb2 import Seed

ANNOTATOR_VERSION = "keyphrase@v1"

_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been before being below
    between both but by can cannot could did do does doing down during each either else etc ever every few for from
    further had has have having he her here hers herself him himself his how however i if in into is isn't it its
    itself just least less let like many may me might more most much must my myself neither no nor not now of off
    often on once one only or other others otherwise our ours ourselves out over own per quite rather same several
    shall she should since so some such than that the their theirs them themselves then there therefore these they
    this those though through thus to too two under until up upon us use used using very via was we were what when
    where whether which while who whom whose why will with within without would yet you your yours yourself
    yourselves first second third following statement statements true false correct incorrect best answer answers
    question questions choice choices option options describes described describe given give find let suppose
    assume consider called known say says said select choose number numbers value values get got make made
    would could might also still must always never sometimes usually often e.g i.e way ways thing things
    kind type types part parts case cases example examples following refers refer presents present shown show
    shows possible general total next even add added equal result results resulting calculate compute determine
    explain mean means consists contains include includes including based order much new old good bad worst
    best better greater smaller large small largest smallest true""".split()
)
# Words that end a candidate badly: adverbs and past participles are rarely the concept a question tests.
_WEAK_END = re.compile(r"(?:ly|ed)$")
# LaTeX commands and their names are never keyphrases.
_LATEX = re.compile(r"\\[A-Za-z]+|\$[^$]*\$|\\\(|\\\)|\\\[|\\\]")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]")
_POSSESSIVE = re.compile(r"'s?$")
_MATH_MARKERS = re.compile(r"\\(?:int|sum|prod|lim|infty|partial|nabla|oint|binom|det|mathbb)|eigen|integral|"
                           r"derivative|theorem|lemma|homomorph|isomorph|manifold|asymptot|polynomial ring|modulo")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


@dataclass(frozen=True)
class KeyphraseParams:
    """Knobs of the keyphrase extractor (from ExtractorConfig)."""

    top_n: int = 5
    max_ngram: int = 3
    diversity: float = 0.5
    max_candidates: int = 64
    """Most distinct candidates ranked per seed (the most frequent, then earliest)."""
    batch_size: int = 64
    """Seeds per encoder forward pass."""


@dataclass(frozen=True)
class Candidate:
    phrase: str
    spans: tuple[tuple[int, int], ...]
    """Character spans of its occurrences in the text."""


def seed_text(seed: Seed) -> str:
    """What keyphrases are drawn from: question then answer."""
    return f"{seed.question.strip()}\n{seed.answer.strip()}"


def candidates(text: str, max_ngram: int, max_candidates: int) -> list[Candidate]:
    """Distinct lowercase n-grams of contiguous content words, with every occurrence's character span."""
    # Same-length replacements keep offsets aligned with `text`.
    masked = _LATEX.sub(lambda m: " " * len(m.group(0)), text.replace("\u2019", "'"))
    words = [(_POSSESSIVE.sub("", m.group(0).lower()), m.start(), m.end()) for m in _WORD.finditer(masked)]
    found: dict[str, list[tuple[int, int]]] = {}
    run: list[tuple[str, int, int]] = []

    def flush() -> None:
        for n in range(1, max_ngram + 1):
            for i in range(len(run) - n + 1):
                gram = run[i : i + n]
                phrase = " ".join(w for w, _, _ in gram)
                if (n == 1 and len(phrase) < 3) or _WEAK_END.search(gram[-1][0]) or gram[0][0].endswith("ly"):
                    continue
                found.setdefault(phrase, []).append((gram[0][1], gram[-1][2]))
        run.clear()

    prev_end = 0
    for word, start, end in words:
        gap = masked[prev_end:start]
        # A run stops at stopwords, line breaks and anything but spaces between words (punctuation, digits, LaTeX).
        if run and (gap.strip() or "\n" in gap):
            flush()
        if word in _STOPWORDS or len(word) > 30:
            flush()
        else:
            run.append((word, start, end))
        prev_end = end
    flush()
    ranked = sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[1][0][0]))[:max_candidates]
    return [Candidate(p, tuple(spans)) for p, spans in ranked]


def mmr(doc: np.ndarray, cands: np.ndarray, top_n: int, diversity: float) -> list[int]:
    """Indices of `top_n` rows of `cands` (unit-norm) by Maximal Marginal Relevance against `doc` (unit-norm)."""
    if len(cands) == 0:
        return []
    relevance = cands @ doc
    picked = [int(np.argmax(relevance))]
    pairwise = cands @ cands.T
    remaining = np.ones(len(cands), dtype=bool)
    remaining[picked[0]] = False
    while len(picked) < min(top_n, len(cands)):
        redundancy = pairwise[:, picked].max(axis=1)
        score = (1.0 - diversity) * relevance - diversity * redundancy
        score[~remaining] = -np.inf
        best = int(np.argmax(score))
        picked.append(best)
        remaining[best] = False
    return picked


def _syllables(word: str) -> int:
    return max(1, len(_VOWEL_GROUPS.findall(word.lower())) - (1 if word.lower().endswith("e") and len(word) > 3 else 0))


def heuristic_difficulty(question: str) -> int:
    """A light difficulty guess from the question text alone: the Flesch-Kincaid grade of the question
    (0.39 * words/sentence + 11.8 * syllables/word - 15.59), mapped to grade bands (<=5 primary: 1, <=8 middle: 2,
    <=12 high school: 3, <=16 undergraduate: 4, above: 5), one level up when it uses advanced-mathematics markers
    (integrals, limits, sums, theorems...). Readability tracks vocabulary, not conceptual depth: expect agreement
    with true levels well below an LLM's (bench/extract.py measures it)."""
    text = _LATEX.sub(" ", question)
    words = _WORD.findall(text)
    if not words:
        return 3
    sentences = max(1, len(_SENTENCE_END.findall(text)))
    syllables = sum(_syllables(w) for w in words)
    grade = 0.39 * len(words) / sentences + 11.8 * syllables / len(words) - 15.59
    level = 1 if grade <= 5 else 2 if grade <= 8 else 3 if grade <= 12 else 4 if grade <= 16 else 5
    if _MATH_MARKERS.search(question):
        level = min(5, level + 1)
    return level


class KeyphraseExtractor:
    """Annotates batches of seeds with one MiniLM pass per batch; thread-safe (the embedder serialises)."""

    def __init__(self, embedder: MiniLMEmbedder, taxonomy: Taxonomy, params: KeyphraseParams = KeyphraseParams(),
                 trust_seed_labels: bool = True) -> None:
        self.embedder = embedder
        self.taxonomy = taxonomy
        self.params = params
        self.trust_seed_labels = trust_seed_labels
        self.annotator = ANNOTATOR_VERSION
        self._subs = taxonomy.subdiscipline_names()
        self._centroids = self._taxonomy_centroids()

    def _taxonomy_centroids(self) -> np.ndarray:
        texts: list[str] = []
        owner: list[int] = []
        for i, sub in enumerate(self._subs):
            texts.append(f"{sub} ({self.taxonomy.discipline_of(sub)})")
            owner.append(i)
        for key, label in self.taxonomy.subjects.items():
            texts.append(key.replace("_", " "))
            owner.append(self._subs.index(label.subdiscipline))
        vecs = self.embedder.encode(texts)
        sums = np.zeros((len(self._subs), vecs.shape[1]), dtype=np.float32)
        np.add.at(sums, np.asarray(owner), vecs)
        return sums / np.linalg.norm(sums, axis=1, keepdims=True)

    def classify(self, doc_vecs: np.ndarray) -> list[tuple[str, str]]:
        """(discipline, subdiscipline) of the nearest subdiscipline centroid, per unit-norm seed vector."""
        best = np.argmax(doc_vecs @ self._centroids.T, axis=1)
        return [(self.taxonomy.discipline_of(self._subs[i]) or "", self._subs[i]) for i in best]

    def annotate(self, seeds: Sequence[Seed]) -> list[Outcome]:
        """One Outcome per seed, in order."""
        out: list[Outcome] = []
        bs = self.params.batch_size
        for start in range(0, len(seeds), bs):
            out.extend(self._annotate_batch(seeds[start : start + bs]))
        return out

    def _annotate_batch(self, seeds: Sequence[Seed]) -> list[Outcome]:
        texts = [seed_text(s) for s in seeds]
        ts = self.embedder.token_states(texts)
        mask = ts.mask.astype(np.float32)
        doc = (ts.states * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        doc /= np.linalg.norm(doc, axis=1, keepdims=True)
        predicted = self.classify(doc)
        outcomes: list[Outcome] = []
        for i, (seed, text) in enumerate(zip(seeds, texts)):
            cands = candidates(text, self.params.max_ngram, self.params.max_candidates)
            kps = self._rank(cands, ts.states[i], ts.mask[i], ts.offsets[i], doc[i])
            if not kps:
                outcomes.append(Outcome.failed(
                    f"no keyphrase candidates in seed {seed.id!r} (lang {seed.lang or '?'!r}): the keyphrase "
                    "extractor reads English words only", "input", retryable=False))
                continue
            labels = seed_labels(seed, self.taxonomy) if self.trust_seed_labels else None
            discipline, subdiscipline = predicted[i]
            if labels and labels.discipline:
                discipline, subdiscipline = labels.discipline, labels.subdiscipline
            difficulty = labels.difficulty if labels and labels.difficulty else heuristic_difficulty(seed.question)
            outcomes.append(Outcome(Annotation(kps, discipline, subdiscipline, difficulty, self.annotator)))
        return outcomes

    def _rank(self, cands: list[Candidate], states: np.ndarray, mask: np.ndarray, offsets: np.ndarray,
              doc: np.ndarray) -> list[str]:
        if not cands:
            return []
        starts, ends = offsets[:, 0], offsets[:, 1]
        real = mask & (ends > starts)  # special tokens have empty spans
        select = np.zeros((len(cands), len(starts)), dtype=np.float32)
        for c, cand in enumerate(cands):
            for s, e in cand.spans:
                select[c] += real & (starts >= s) & (ends <= e)
        counts = select.sum(axis=1)
        keep = counts > 0  # occurrences past the encoder's truncation have no tokens
        if not keep.any():
            return []
        vecs = (select[keep] @ states) / counts[keep, None]
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        phrases = [c.phrase for c, k in zip(cands, keep) if k]
        picked = mmr(doc, vecs, self.params.top_n, self.params.diversity)
        return [phrases[j] for j in picked]


class KPCanonV1:
    """KPCanon as it was: each new form is compared with the vocabulary by its own matrix-vector product."""

    def __init__(self, encode, threshold: float = 0.92, dim: int = 384) -> None:
        import threading

        self._encode = encode
        self.threshold = threshold
        self._alias: dict[str, str] = {}
        self._kps: list[str] = []
        self._vecs = np.zeros((64, dim), dtype=np.float32)
        self._lock = threading.Lock()
        self.merged = 0

    def __len__(self) -> int:
        return len(self._kps)

    def canonicalise(self, kp_lists):
        from linksyn.common.kp_form import canonical_form

        forms = [[f for f in (canonical_form(k) for k in kps) if f] for kps in kp_lists]
        with self._lock:
            new = list(dict.fromkeys(f for fs in forms for f in fs if f not in self._alias))
            if new:
                self._admit(new)
            return [list(dict.fromkeys(self._alias[f] for f in fs)) for fs in forms]

    def _admit(self, new: list[str]) -> None:
        vecs = self._encode(new)
        for form, vec in zip(new, vecs):
            n = len(self._kps)
            if n:
                sims = self._vecs[:n] @ vec
                best = int(np.argmax(sims))
                if sims[best] >= self.threshold:
                    self._alias[form] = self._kps[best]
                    self.merged += 1
                    continue
            if n == len(self._vecs):
                self._vecs = np.concatenate([self._vecs, np.zeros_like(self._vecs)])
            self._vecs[n] = vec
            self._kps.append(form)
            self._alias[form] = form
