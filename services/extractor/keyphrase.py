"""The LLM-free annotator: keyphrases as knowledge points, discipline and difficulty without a generative model.

Everything runs per batch of seeds, vectorised with numpy (`KeyphraseExtractor.annotate`):
- candidates (`candidates`, per seed, the only per-seed Python): 1..max_ngram-word runs of content words in
  question + answer (cut at stopwords, punctuation, numbers and LaTeX, as KeyBERT's CountVectorizer with stopwords
  but never spanning a stopword); words inside `\\text{...}`; math concepts named by LaTeX commands (`\\frac` ->
  "fraction", `\\sqrt` -> "square root", `\\int` -> "integral", pmatrix -> "matrix", ...: `MATH_CONCEPTS`); and for
  Chinese, whole words from jieba's segmentation (content words by part of speech, and compounds of two adjacent
  words ending in a noun: `linksyn.extractor.segment`), so a candidate never cuts a word;
- token vectors for the whole batch in one call (`MiniLMEmbedder.flat_tokens`): 'contextual' = MiniLM's last layer
  in length-sorted padded batches; 'static' = a context-free vector per vocabulary token (no transformer pass once
  a token has been seen: the mode for a million seeds on CPUs);
- a candidate's vector is the (weighted) mean of the token vectors inside its occurrences, one sparse product
  (candidates x tokens) for the whole batch; the seed's vector is the mean of all its tokens (MiniLM's own pooling
  in contextual mode);
- candidates are ranked by cosine to their seed and picked with Maximal Marginal Relevance (score =
  (1 - diversity) * sim(candidate, seed) - diversity * max sim(candidate, picked)), all seeds of the batch at once;
- mostly-Chinese seeds are ranked without embeddings (MiniLM's vocabulary holds only 244 CJK characters, most
  Chinese characters become [UNK]): by count x IDF (jieba's IDF table), then longest, then earliest, skipping
  overlaps, over the whole text (not cut at MiniLM's token limit);
- a seed left without any candidate (a formula-only problem) gets its labelled subdiscipline's name as its KP when
  the taxonomy knows its subject, and fails (permanently, with the reason) otherwise.

Discipline: the seed's own label when trusted, else, for a mostly-Chinese seed, the taxonomy's keyword lexicon
(`linksyn.extractor.lexicon`: MiniLM cannot read Chinese), and for other seeds (or a Chinese seed no keyword
matches) the nearest taxonomy centroid: each subdiscipline's centroid is the mean embedding of its name (with its
discipline) and the subjects mapped to it, embedded in the same space as the seeds (contextual or static).

Difficulty: the seed's own label when trusted, else for a mostly-Chinese seed `linksyn.extractor.lexicon`'s
heuristic (the English-fitted model reads MiniLM vectors), else the packaged linear classifier over the seed's
vector (`linksyn.extractor.difficulty`; fitted by scripts/fit_difficulty.py), else `heuristic_difficulty`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from linksyn.common.taxonomy import Taxonomy
from linksyn.common.text import fold_compat
from linksyn.extractor.annotation import Annotation, Outcome, seed_labels
from linksyn.extractor.difficulty import DifficultyModel, load_difficulty_model
from linksyn.extractor.embedding import FlatTokens, MiniLMEmbedder, TokenMode
from linksyn.extractor.lexicon import KeywordClassifier, chinese_difficulty
from linksyn.extractor.segment import NOUN_TAGS, ChineseSegmenter, Word, is_content_word, shared_segmenter
from linksyn.v1.records_pb2 import Seed

ANNOTATOR_VERSION = "keyphrase@v3"

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
# Math regions: $$..$$, $..$, \(..\), \[..\], and LaTeX environments.
_MATH_REGION = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]|\\begin\{(\w+\*?)\}.*?\\end\{\1\}",
                          re.DOTALL)
# Prose inside math: \text{mean}, \textbf{...}, \mbox{...}, \operatorname{...}.
_MATH_TEXT = re.compile(r"\\(?:text|textbf|textit|textrm|mbox|mathrm|operatorname)\s*\{([^{}$]*)\}")
_COMMAND = re.compile(r"\\([A-Za-z]+)")
# Latin ligatures (U+FB00-FB06: "conﬂict" in MMLU) are letters; canonical_form's NFKC spells them out.
_WORD = re.compile(r"[A-Za-z\ufb00-\ufb06][A-Za-z'\-\ufb00-\ufb06]*[A-Za-z\ufb00-\ufb06]")
_POSSESSIVE = re.compile(r"'s?$")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")
_MATH_MARKERS = re.compile(r"\\(?:int|sum|prod|lim|infty|partial|nabla|oint|binom|det|mathbb)|eigen|integral|"
                           r"derivative|theorem|lemma|homomorph|isomorph|manifold|asymptot|polynomial ring|modulo")

MATH_CONCEPTS: dict[str, str] = {
    **dict.fromkeys(["frac", "dfrac", "tfrac", "cfrac"], "fraction"),
    "sqrt": "square root",
    "sin": "sine", "cos": "cosine", "tan": "tangent", "cot": "cotangent", "sec": "secant", "csc": "cosecant",
    **dict.fromkeys(["arcsin", "arccos", "arctan"], "inverse trigonometric function"),
    **dict.fromkeys(["log", "ln", "lg"], "logarithm"),
    "exp": "exponential function",
    **dict.fromkeys(["int", "iint", "oint"], "integral"),
    "sum": "summation", "prod": "product notation", "lim": "limit",
    **dict.fromkeys(["binom", "dbinom", "tbinom", "choose"], "binomial coefficient"),
    **dict.fromkeys(["pmatrix", "bmatrix", "vmatrix", "matrix"], "matrix"),
    "det": "determinant", "vec": "vector", "overrightarrow": "vector",
    **dict.fromkeys(["angle", "measuredangle"], "angle"), "triangle": "triangle", "circ": "degree",
    "pi": "pi", "infty": "infinity",
    **dict.fromkeys(["equiv", "pmod", "bmod", "mod"], "modular arithmetic"),
    **dict.fromkeys(["le", "ge", "leq", "geq", "lt", "gt", "neq", "ne"], "inequality"),
    **dict.fromkeys(["lfloor", "rfloor"], "floor function"), **dict.fromkeys(["lceil", "rceil"], "ceiling function"),
    "perp": "perpendicular", "parallel": "parallel lines", "cup": "set union", "cap": "set intersection",
    "subset": "subset", "subseteq": "subset", "emptyset": "empty set", "gcd": "greatest common divisor",
    "lcm": "least common multiple", "partial": "partial derivative", "nabla": "gradient", "mathbb": "number set",
    "overline": "line segment", "sim": "similarity", "cong": "congruence", "div": "division", "%": "percent",
}
"""LaTeX command (without the backslash) or environment name -> the math concept it names (a candidate KP)."""

_SPACE = re.compile(r"\s")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_COMPOUND_MAX_CHARS = 8
"""Longest Chinese compound candidate (two adjacent whole words)."""
_COMPOUND_BONUS = 0.5
"""Added to a compound's weight (the larger IDF of its two words), so at equal counts 额定功率 ranks above 功率."""


@dataclass(frozen=True)
class KeyphraseParams:
    """Knobs of the keyphrase extractor (from ExtractorConfig)."""

    top_n: int = 5
    max_ngram: int = 3
    diversity: float = 0.5
    max_candidates: int = 64
    """Most distinct candidates ranked per seed (the most frequent, then earliest)."""
    batch_size: int = 256
    """Seeds per annotate step (token vectors, scoring and MMR are computed for all of them at once)."""
    encoder_batch_size: int = 64
    """Texts per padded MiniLM forward pass in contextual mode (texts are sorted by length first)."""
    tokens: TokenMode = "contextual"
    """'contextual' (MiniLM forward pass per seed) or 'static' (context-free token table: no forward pass)."""
    max_tokens: int = 256
    """Tokens of question + answer read per seed (the rest is not ranked)."""


@dataclass(frozen=True)
class Candidate:
    phrase: str
    spans: tuple[tuple[int, int], ...]
    """Character spans of its occurrences in the text."""
    weight: float = 0.0
    """Chinese candidates: the IDF of the word (of a compound: its rarer word's, plus a bonus); 0 otherwise."""


def seed_text(seed: Seed) -> str:
    """What keyphrases are drawn from: question then answer."""
    return f"{seed.question.strip()}\n{seed.answer.strip()}"


_MASK = "\x00"
"""What math regions and LaTeX commands are blanked with: not a space, so a run of words never spans a formula
("a perfect $n$th power" gives "perfect" and "th power", never "perfect th power")."""


def _prose_mask(text: str) -> str:
    """`text` with math regions and LaTeX commands blanked (same length, so offsets stay aligned), keeping the
    prose inside \\text{...}."""
    chars = list(text)
    for m in _MATH_REGION.finditer(text):
        keep = [(t.start(1), t.end(1)) for t in _MATH_TEXT.finditer(text, m.start(), m.end())]
        for i in range(m.start(), m.end()):
            chars[i] = _MASK
        for s, e in keep:
            chars[s:e] = text[s:e]
    masked = "".join(chars)
    return _COMMAND.sub(lambda m: _MASK * len(m.group(0)), masked)


def _math_concepts(text: str, found: dict[str, list[tuple[int, int]]]) -> None:
    for m in _COMMAND.finditer(text):
        concept = MATH_CONCEPTS.get(m.group(1))
        if concept:
            found.setdefault(concept, []).append((m.start(), m.end()))
    for m in re.finditer(r"\\%|(?<=\d)%", text):
        found.setdefault("percent", []).append((m.start(), m.end()))


def _cjk_candidates(text: str, found: dict[str, list[tuple[int, int]]], weights: dict[str, float],
                    segmenter: ChineseSegmenter) -> None:
    """Whole-word Chinese candidates: content words of two or more characters (jieba's cut and POS tags), and
    compounds of two adjacent content words ending in a noun (额定 + 功率). A candidate never starts or ends inside
    a word; its text is the folded one (Kangxi radicals as the ideographs they stand for)."""
    prev: Word | None = None
    for w in segmenter.words(text):
        ok = is_content_word(w)
        if ok:
            found.setdefault(w.text, []).append((w.start, w.end))
            weights[w.text] = segmenter.idf_of(w.text)
            if (prev is not None and prev.end == w.start and w.tag in NOUN_TAGS
                    and len(prev.text) + len(w.text) <= _COMPOUND_MAX_CHARS):
                phrase = prev.text + w.text
                found.setdefault(phrase, []).append((prev.start, w.end))
                weights[phrase] = max(segmenter.idf_of(prev.text), segmenter.idf_of(w.text)) + _COMPOUND_BONUS
        prev = w if ok else None


def candidates(text: str, max_ngram: int, max_candidates: int,
               segmenter: ChineseSegmenter | None = None) -> list[Candidate]:
    """Distinct candidate phrases with every occurrence's character span: lowercase n-grams of contiguous content
    words (prose and \\text{} words), math concepts named by LaTeX commands, whole Chinese words and compounds
    (`segmenter`, the shared one by default). The `max_candidates` most frequent (then earliest) are kept."""
    text = text.replace("\u2019", "'")
    masked = _prose_mask(text)
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
    if "\\" in text or "%" in text:
        _math_concepts(text, found)
    weights: dict[str, float] = {}
    if _CJK_RUN.search(text):
        _cjk_candidates(text, found, weights, segmenter or shared_segmenter())
    ranked = sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[1][0][0]))[:max_candidates]
    return [Candidate(p, tuple(spans), weights.get(p, 0.0)) for p, spans in ranked]


def _cut_at_word(text: str, end: int) -> str:
    """`text[:end]`, shortened to the last word boundary when `end` falls inside a word (so a candidate is never
    the head of a word cut by the encoder's token limit: "con" of "conflict")."""
    if end >= len(text) or not (text[end - 1].isalnum() and text[end].isalnum()):
        return text[:end]
    cut = end
    while cut > 0 and text[cut - 1].isalnum():
        cut -= 1
    return text[:cut]


def is_mostly_cjk(text: str) -> bool:
    """At least a fifth of the non-space characters are CJK ideographs (as the seed readers' language guess)."""
    text = fold_compat(text)
    cjk = sum(len(m.group(0)) for m in _CJK_RUN.finditer(text))
    if not cjk:
        return False
    return 5 * cjk >= len(text) - len(_SPACE.findall(text))


def mmr(doc: np.ndarray, cands: np.ndarray, top_n: int, diversity: float) -> list[int]:
    """Indices of `top_n` rows of `cands` (unit-norm) by Maximal Marginal Relevance against `doc` (unit-norm)."""
    if len(cands) == 0:
        return []
    picked = mmr_batch(doc[None, :], cands[None, :, :], np.array([len(cands)]), top_n, diversity)[0]
    return [int(j) for j in picked if j >= 0]


def mmr_batch(docs: np.ndarray, cands: np.ndarray, counts: np.ndarray, top_n: int, diversity: float) -> np.ndarray:
    """MMR for many seeds at once: `docs` (B, d), `cands` (B, C, d) padded, `counts` (B,) real candidates per row.
    Returns (B, min(top_n, C)) candidate indices, -1 where a row has fewer candidates."""
    b, c = cands.shape[:2]
    k = min(top_n, c)
    picked = np.full((b, k), -1, dtype=np.int64)
    if b == 0 or c == 0:
        return picked
    relevance = np.einsum("bcd,bd->bc", cands, docs)
    pairwise = np.matmul(cands, cands.transpose(0, 2, 1))
    valid = np.arange(c)[None, :] < counts[:, None]
    rows = np.arange(b)
    redundancy = np.full((b, c), -np.inf, dtype=relevance.dtype)
    for step in range(k):
        # Step 0 is by relevance alone (no picked phrase to be redundant with).
        score = relevance if step == 0 else (1.0 - diversity) * relevance - diversity * redundancy
        score = np.where(valid, score, -np.inf)
        best = np.argmax(score, axis=1)
        live = valid[rows, best]
        picked[live, step] = best[live]
        valid[rows[live], best[live]] = False
        redundancy = np.maximum(redundancy, pairwise[rows, :, best])
    return picked


def _syllables(word: str) -> int:
    return max(1, len(_VOWEL_GROUPS.findall(word.lower())) - (1 if word.lower().endswith("e") and len(word) > 3 else 0))


def heuristic_difficulty(question: str) -> int:
    """A light difficulty guess from the question text alone (used only when no fitted difficulty model is
    available): the Flesch-Kincaid grade of the question (0.39 * words/sentence + 11.8 * syllables/word - 15.59),
    mapped to grade bands (<=5 primary: 1, <=8 middle: 2, <=12 high school: 3, <=16 undergraduate: 4, above: 5),
    one level up when it uses advanced-mathematics markers. On real labelled seeds it does worse than always
    answering level 3 (bench/extract.py), which is why the fitted model replaced it."""
    text = _prose_mask(question)
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


def _weighted_pick(cands: list[Candidate], top_n: int, default_weight: float) -> list[str]:
    """Highest count x weight (TF-IDF: Chinese words carry jieba's IDF, other candidates `default_weight`), then
    longest, then earliest candidates, skipping any whose occurrences overlap a picked one's (a compound and its
    own words). For text the embedder cannot read: MiniLM's vocabulary holds few CJK characters."""
    ranked = sorted(cands, key=lambda c: (-len(c.spans) * (c.weight or default_weight), -len(c.phrase),
                                          c.spans[0][0]))
    picked: list[str] = []
    taken: list[tuple[int, int]] = []
    for c in ranked:
        if not any(s < te and ts < e for s, e in c.spans for ts, te in taken):
            picked.append(c.phrase)
            taken.extend(c.spans)
            if len(picked) == top_n:
                break
    return picked


class KeyphraseExtractor:
    """Annotates batches of seeds, vectorised over the batch; thread-safe (the embedder serialises its passes)."""

    from_text = True
    """Every KP it proposes is read off the seed's own text (the extractor's grounding needs no check)."""

    def __init__(self, embedder: MiniLMEmbedder, taxonomy: Taxonomy, params: KeyphraseParams = KeyphraseParams(),
                 trust_seed_labels: bool = True, difficulty: DifficultyModel | None | bool = True,
                 segmenter: ChineseSegmenter | None = None) -> None:
        """`difficulty`: a model, True for the packaged one of `params.tokens` (None if it is missing), or
        None/False for `heuristic_difficulty`. `segmenter`: the shared one by default."""
        self.embedder = embedder
        self.segmenter = segmenter or shared_segmenter()
        self.keywords = KeywordClassifier(taxonomy, self.segmenter)
        self.taxonomy = taxonomy
        self.params = params
        self.trust_seed_labels = trust_seed_labels
        self.annotator = f"{ANNOTATOR_VERSION}/{params.tokens}"
        self._subs = taxonomy.subdiscipline_names()
        self._centroids = self._taxonomy_centroids()
        if difficulty is True:
            difficulty = load_difficulty_model(params.tokens)
        self.difficulty: DifficultyModel | None = difficulty or None

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.params.tokens == "static":
            return self.embedder.encode_static(texts)
        return self.embedder.encode(texts)

    def _taxonomy_centroids(self) -> np.ndarray:
        texts: list[str] = []
        owner: list[int] = []
        for i, sub in enumerate(self._subs):
            texts.append(f"{sub} ({self.taxonomy.discipline_of(sub)})")
            owner.append(i)
        for key, label in self.taxonomy.subjects.items():
            texts.append(key.replace("_", " "))
            owner.append(self._subs.index(label.subdiscipline))
        vecs = self._encode(texts)
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
        p = self.params
        texts = [seed_text(s) for s in seeds]
        flat = self.embedder.flat_tokens(texts, p.tokens, batch_size=p.encoder_batch_size, max_tokens=p.max_tokens)
        doc = flat.pooled()
        predicted = self.classify(doc)
        # Text past the encoder's truncation has no token vectors: its candidates could not be ranked anyway.
        read = np.maximum.reduceat(flat.ends, flat.bounds[:-1]) if len(flat.ends) else np.zeros(len(texts), int)
        cut = np.diff(flat.bounds) >= p.max_tokens
        cjk = [is_mostly_cjk(t) for t in texts]
        cands = [candidates(_cut_at_word(t, int(r) + 1) if c and not z else t, p.max_ngram, p.max_candidates,
                            self.segmenter) for t, r, c, z in zip(texts, read, cut, cjk)]
        kps = self._rank(cands, [not c for c in cjk], flat, doc)
        if self.difficulty is not None:
            levels = self.difficulty.predict(doc, [s.question for s in seeds], [s.answer for s in seeds])
        else:
            levels = [heuristic_difficulty(s.question) for s in seeds]
        for i in np.flatnonzero(cjk):  # MiniLM cannot read Chinese: the lexicon and the vocabulary heuristic instead
            by_keyword = self.keywords.classify(texts[i])
            if by_keyword is not None:
                predicted[i] = by_keyword
            levels[i] = chinese_difficulty(seeds[i].question, self.segmenter)
        outcomes: list[Outcome] = []
        for i, seed in enumerate(seeds):
            labels = seed_labels(seed, self.taxonomy)
            seed_kps = kps[i]
            if cjk[i] or not seed_kps:  # MiniLM cannot read it (Chinese, or nothing it can weigh): TF-IDF order
                seed_kps = _weighted_pick(cands[i], p.top_n, self.segmenter.median_idf)
            if not seed_kps and (labels.subdiscipline or labels.discipline):
                seed_kps = [labels.subdiscipline or labels.discipline]  # a formula-only problem still belongs to its subject
            if not seed_kps:
                outcomes.append(Outcome.failed(
                    f"no keyphrase candidates in seed {seed.id!r} (lang {seed.lang or '?'!r}, "
                    f"{len(seed.question)} question chars) and no subject label to fall back on: the keyphrase "
                    "extractor reads English and Chinese words and named LaTeX operators", "input", retryable=False))
                continue
            discipline, subdiscipline = predicted[i]
            difficulty = int(levels[i])
            if self.trust_seed_labels:
                if labels.discipline:
                    discipline, subdiscipline = labels.discipline, labels.subdiscipline
                difficulty = labels.difficulty or difficulty
            outcomes.append(Outcome(Annotation(seed_kps, discipline, subdiscipline, difficulty, self.annotator)))
        return outcomes

    def _rank(self, cands: list[list[Candidate]], use: list[bool], flat: FlatTokens, doc: np.ndarray) -> list[list[str]]:
        """MMR-picked phrases per seed (empty where `use` is off or no candidate has tokens), for the whole batch."""
        # One row per (candidate, occurrence) -> its token range in `flat`.
        seed_of, cand_of, span_lo, span_hi, phrases = [], [], [], [], []
        for i, (cs, on) in enumerate(zip(cands, use)):
            if not on:
                continue
            for c in cs:
                for s, e in c.spans:
                    seed_of.append(i)
                    cand_of.append(len(phrases))
                    span_lo.append(s)
                    span_hi.append(e)
                phrases.append((i, c.phrase))
        result: list[list[str]] = [[] for _ in cands]
        if not phrases:
            return result
        seed_of_a = np.asarray(seed_of)
        lo, hi = np.asarray(span_lo), np.asarray(span_hi)
        b0, b1 = flat.bounds[seed_of_a], flat.bounds[seed_of_a + 1]
        # Tokens of a seed are in text order; real tokens have end > start (specials are empty spans). Tokens
        # [first, last) are those starting at or after the span start and ending at or before its end.
        real = flat.ends > flat.starts
        first = _segment_searchsorted(np.where(real, flat.starts, 0), flat.bounds, seed_of_a, b0, b1, lo, "left")
        last = _segment_searchsorted(np.where(real, flat.ends, 0), flat.bounds, seed_of_a, b0, b1, hi, "right")
        n_tok = np.maximum(last - first, 0)
        # Candidate x token selection matrix weighted by the token weights: one sparse product for the batch.
        rows = np.repeat(np.asarray(cand_of), n_tok)
        cols = np.repeat(first - np.cumsum(n_tok) + n_tok, n_tok) + np.arange(int(n_tok.sum()))
        keep_tok = real[cols]
        rows, cols = rows[keep_tok], cols[keep_tok]
        select = sp.csr_matrix((flat.weights[cols], (rows, cols)), shape=(len(phrases), len(flat.ids)))
        mass = np.asarray(select.sum(axis=1)).ravel()
        vecs = np.asarray(select @ flat.states, dtype=np.float32)
        ok = mass > 0  # occurrences past the encoder's truncation (or all-[UNK]) have no weighted tokens
        vecs[ok] /= np.maximum(np.linalg.norm(vecs[ok], axis=1, keepdims=True), 1e-12)
        owner = np.array([i for i, _ in phrases])
        owner_ok, idx_ok = owner[ok], np.flatnonzero(ok)
        if len(idx_ok) == 0:
            return result
        # Pad to (seeds, max candidates, dim) and run MMR for every seed at once.
        present = np.unique(owner_ok)
        row_of = np.searchsorted(present, owner_ok)
        order = np.lexsort((idx_ok, row_of))
        row_sorted = row_of[order]
        counts = np.bincount(row_sorted, minlength=len(present))
        pos = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
        padded = np.zeros((len(present), int(counts.max()), vecs.shape[1]), dtype=np.float32)
        padded[row_sorted, pos] = vecs[idx_ok[order]]
        cand_index = np.full((len(present), int(counts.max())), -1, dtype=np.int64)
        cand_index[row_sorted, pos] = idx_ok[order]
        picked = mmr_batch(doc[present], padded, counts, self.params.top_n, self.params.diversity)
        for r, seed_i in enumerate(present):
            result[int(seed_i)] = [phrases[cand_index[r, j]][1] for j in picked[r] if j >= 0]
        return result


def _segment_searchsorted(keys: np.ndarray, bounds: np.ndarray, seg: np.ndarray, b0: np.ndarray, b1: np.ndarray,
                          values: np.ndarray, side: str) -> np.ndarray:
    """Per query q: `b0[q] + searchsorted(keys[b0[q]:b1[q]], values[q], side)`, for all queries at once.

    Keys are token offsets in text order, 0 for special tokens; a running maximum gives a special token its
    predecessor's key so every segment is sorted; segments are shifted apart by a per-segment offset so one global
    searchsorted serves them all."""
    span = int(max(keys.max(initial=0), values.max(initial=0))) + 2
    seg_of_token = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    shifted = np.maximum.accumulate(keys + seg_of_token * span) if len(keys) else keys
    hit = np.searchsorted(shifted, values + seg * span, side=side)  # type: ignore[arg-type]
    return np.clip(hit, b0, b1)
