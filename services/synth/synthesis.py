"""Synthesis of new QA from walk paths: request planning, generation rounds, hard-mode re-annotation, refinement,
filters, and the SynthQA records with their lineage.

No I/O of its own: it is given LLM objects and calls `generate` once per round for the whole batch of paths
(generation, then difficulty ratings for hard mode, then refinement), so an in-process engine gets one large
batch and an OpenAI-compatible backend gets every request of the round in flight at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Sequence

from linksyn.common.grades import GRADE_NAMES
from linksyn.common.ids import content_id
from linksyn.common.llm.base import LLM, ChatRequest, Completion, SamplingParams
from linksyn.common.modes import MODES, mode_name, mode_value
from linksyn.common.text import detect_lang, normalise_text
from linksyn.synth.checkable import answers_agree, extract_checkable
from linksyn.synth.config import SynthConfig
from linksyn.synth.filters import first_failed_filter
from linksyn.synth.parse import (
    GeneratedQA,
    ReplyError,
    parse_generated_qa,
    parse_rating,
    parse_refined_answer,
)
from linksyn.synth.prompt import (
    RATING_SCHEMA,
    REFINE_SCHEMA,
    PromptTemplate,
    chat_request,
    load_template,
    qa_schema,
    seed_text,
)
from linksyn.v1 import records_pb2


def synth_qa_id(question: str, answer: str) -> str:
    """Deterministic id of a synthesized QA: the same normalised question and answer always give the same id."""
    return content_id("synth-qa", normalise_text(question), normalise_text(answer))


def request_seed(request_id: str) -> int:
    """Sampling seed of one generation request, derived from its id (path id, mode, grade): a path redelivered
    after a crash is sampled the same way again, so it yields the same QA and QA id, which the sink skips as a
    replay; different paths and grades still sample differently."""
    return int(content_id("synth-seed", request_id)[:8], 16) & 0x7FFFFFFF


def is_stem(discipline: str, stem: Sequence[str]) -> bool:
    """Whether any '/'-, ':' or '>'-separated part of `discipline` is one of the STEM names (case-insensitive)."""
    names = {s.lower() for s in stem}
    parts = [p.strip().lower() for p in discipline.replace(":", "/").replace(">", "/").split("/")]
    return discipline.strip().lower() in names or any(p in names for p in parts if p)


@dataclass
class _Draft:
    """One generation request and what it was asked for."""

    path_index: int
    mode: str
    template: PromptTemplate
    request: ChatRequest
    sources: list[records_pb2.PathSeed]
    grade: int = 0
    source_difficulty: int = 0


@dataclass
class _Candidate:
    """A generated QA that passed parsing and filters, on its way through rating and refinement."""

    draft: _Draft
    qa: GeneratedQA
    prompt_tokens: int
    completion_tokens: int
    difficulty: int = 0
    models: list[str] = field(default_factory=list)


@dataclass
class PathOutcome:
    """What came of one path: its SynthQA records and drop counts, or the error that failed it."""

    path_id: str
    qas: list[records_pb2.SynthQA] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    error: str | None = None
    retryable: bool = True
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Synthesizer:
    """Turns batches of WalkPaths into SynthQA records with a generator and an optional refiner model."""

    def __init__(self, cfg: SynthConfig, generator: LLM, refiner: LLM | None = None) -> None:
        self.cfg = cfg
        self.generator = generator
        self.refiner = refiner
        directory = cfg.prompts_dir
        self.templates = {m: load_template(m, cfg.prompt_version, directory) for m in MODES}
        self.rate_template = load_template("rate", cfg.prompt_version, directory)
        self.refine_template = load_template("refine", cfg.prompt_version, directory)
        self.qa_schema = qa_schema(
            cfg.max_question_chars, cfg.max_answer_chars, cfg.max_rationale_chars, cfg.max_knowledge_points
        )
        self.gen_params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens)
        self.rate_params = SamplingParams(temperature=0.0, max_tokens=cfg.rating_max_tokens)
        self.refine_params = SamplingParams(temperature=0.0, max_tokens=cfg.refine_max_tokens)

    # -- planning ---------------------------------------------------------------------------------------------

    def _seed(self, s: records_pb2.PathSeed, with_kps: bool = True) -> str:
        return seed_text(s.question, s.answer, list(s.kps) if with_kps else (), self.cfg.max_seed_chars)

    def _gen_params(self, request_id: str) -> SamplingParams:
        return replace(self.gen_params, seed=request_seed(request_id))

    def _discipline(self, path: records_pb2.WalkPath) -> str:
        if path.target_discipline:
            return path.target_discipline
        counts = Counter(s.discipline for s in path.seeds if s.discipline)
        return counts.most_common(1)[0][0] if counts else "general"

    def plan(self, path: records_pb2.WalkPath, path_index: int = 0) -> list[_Draft]:
        """The generation requests of one path. Raises ValueError for a path that can never be synthesized."""
        try:
            mode = mode_name(path.mode) or self.cfg.default_mode
        except ValueError as e:
            raise ValueError(f"path {path.id!r}: {e}") from None
        if not path.seeds:
            raise ValueError(f"path {path.id!r} has no seeds")
        seeds = list(path.seeds)
        discipline = self._discipline(path)
        kps = list(path.kps) or list(dict.fromkeys(k for s in seeds for k in s.kps))
        t = self.templates[mode]
        rid = f"{path.id}:{mode}"
        if mode == "link":
            diff = path.target_difficulty or max((s.difficulty for s in seeds), default=3) or 3
            req = chat_request(t, [self._seed(s) for s in seeds], self._gen_params(rid), self.qa_schema, rid,
                               discipline=discipline, difficulty=diff, kps=kps)
            return [_Draft(path_index, mode, t, req, seeds, grade=diff)]
        if mode == "multi_grade":
            grades = self.cfg.grades if is_stem(discipline, self.cfg.stem_disciplines) else self.cfg.non_stem_grades
            shown = [self._seed(s) for s in seeds]
            return [
                _Draft(path_index, mode, t,
                       chat_request(t, shown, self._gen_params(f"{rid}:{g}"), self.qa_schema, f"{rid}:{g}",
                                    discipline=discipline, difficulty=g, grade_name=GRADE_NAMES[g], kps=kps),
                       seeds, grade=g)
                for g in grades
            ]
        # hard: rewrite the path's seed of the target discipline (else its first) toward a higher difficulty.
        source = next((s for s in seeds if s.discipline == discipline), seeds[0])
        req = chat_request(t, [self._seed(source)], self._gen_params(rid), self.qa_schema, rid,
                           discipline=discipline, difficulty=source.difficulty or "unknown")
        return [_Draft(path_index, mode, t, req, [source], source_difficulty=source.difficulty)]

    def _expected_lang(self, path: records_pb2.WalkPath) -> str:
        if self.cfg.lang != "auto":
            return self.cfg.lang
        return detect_lang(" ".join(s.question for s in path.seeds), self.cfg.zh_min_cjk_share)

    # -- the rounds -------------------------------------------------------------------------------------------

    def synthesize(self, paths: Sequence[records_pb2.WalkPath]) -> list[PathOutcome]:
        """One outcome per path, in order. An LLM failure fails only the paths whose requests failed."""
        outcomes = [PathOutcome(path_id=p.id) for p in paths]
        drafts: list[_Draft] = []
        for i, p in enumerate(paths):
            try:
                drafts.extend(self.plan(p, i))
            except ValueError as e:
                outcomes[i].error, outcomes[i].retryable = str(e), False
        completions = self._generate(self.generator, [d.request for d in drafts])

        candidates: list[_Candidate] = []
        for d, c in zip(drafts, completions):
            out = outcomes[d.path_index]
            self._count_tokens(out, c)
            if not self._completion_ok(out, c, "generation"):
                continue
            try:
                qa = parse_generated_qa(c.text)
            except ReplyError:
                out.dropped["malformed"] += 1
                continue
            p = paths[d.path_index]
            reason = first_failed_filter(qa, self._expected_lang(p), [s.question for s in p.seeds], self.cfg)
            if reason:
                out.dropped[reason] += 1
                continue
            cand = _Candidate(d, qa, c.prompt_tokens, c.completion_tokens, models=[self.generator.model_name])
            cand.difficulty = d.grade if d.mode == "multi_grade" else (qa.difficulty or d.grade)
            candidates.append(cand)

        candidates = self._rate_hard(paths, outcomes, candidates)
        candidates = self._refine(outcomes, candidates)
        for cand in candidates:
            out = outcomes[cand.draft.path_index]
            if out.error is None:
                out.qas.append(self._record(paths[cand.draft.path_index], cand))
        for out in outcomes:
            if out.error is not None:
                out.qas = []
        return outcomes

    def _generate(self, llm: LLM, requests: list[ChatRequest]) -> list[Completion]:
        if not requests:
            return []
        completions = llm.generate(requests)
        if len(completions) != len(requests):
            raise RuntimeError(f"{llm.model_name} returned {len(completions)} completions for {len(requests)} requests")
        return completions

    @staticmethod
    def _count_tokens(out: PathOutcome, c: Completion) -> None:
        out.prompt_tokens += c.prompt_tokens
        out.completion_tokens += c.completion_tokens

    @staticmethod
    def _completion_ok(out: PathOutcome, c: Completion, what: str) -> bool:
        if out.error is not None:
            return False
        if c.error is not None:
            out.error, out.retryable = f"{what} request failed: {c.error}", c.retryable
            return False
        return True

    def _rate_hard(
        self, paths: Sequence[records_pb2.WalkPath], outcomes: list[PathOutcome], candidates: list[_Candidate]
    ) -> list[_Candidate]:
        """Re-annotate hard rewrites (and sources without a known difficulty) in one call; keep the harder ones."""
        hard = [c for c in candidates if c.draft.mode == "hard" and outcomes[c.draft.path_index].error is None]
        if not hard:
            return candidates
        requests: list[ChatRequest] = []
        slots: list[tuple[_Candidate, bool]] = []  # (candidate, is_source_rating)
        for c in hard:
            requests.append(self._rating_request(c.qa.question, c.draft.request.request_id + ":rate"))
            slots.append((c, False))
            if not c.draft.source_difficulty:
                requests.append(self._rating_request(c.draft.sources[0].question, c.draft.request.request_id + ":rate-src"))
                slots.append((c, True))
        ratings: dict[int, dict[bool, int | None]] = {}
        for (c, is_src), comp in zip(slots, self._generate(self.generator, requests)):
            out = outcomes[c.draft.path_index]
            self._count_tokens(out, comp)
            c.prompt_tokens += comp.prompt_tokens
            c.completion_tokens += comp.completion_tokens
            if not self._completion_ok(out, comp, "difficulty rating"):
                continue
            try:
                rating: int | None = parse_rating(comp.text)
            except ReplyError:
                rating = None
            ratings.setdefault(id(c), {})[is_src] = rating
        kept_hard: set[int] = set()
        for c in hard:
            out = outcomes[c.draft.path_index]
            r = ratings.get(id(c), {})
            if out.error is not None:
                continue
            new = r.get(False)
            src = c.draft.source_difficulty or r.get(True)
            if new is None or src is None:
                out.dropped["rating_malformed"] += 1
            elif new <= src:
                out.dropped["not_harder"] += 1
            else:
                c.difficulty = new
                kept_hard.add(id(c))
        return [c for c in candidates if c.draft.mode != "hard" or id(c) in kept_hard]

    def _rating_request(self, question: str, rid: str) -> ChatRequest:
        return chat_request(self.rate_template, [f"Question: {question[: self.cfg.max_seed_chars]}"],
                            self.rate_params, RATING_SCHEMA, rid)

    def _refine(self, outcomes: list[PathOutcome], candidates: list[_Candidate]) -> list[_Candidate]:
        """Have the refiner answer each question; checkable answers must agree, free-form ones are replaced."""
        if self.refiner is None or not candidates:
            return candidates
        live = [c for c in candidates if outcomes[c.draft.path_index].error is None]
        requests = [
            chat_request(self.refine_template,
                         [f"Question: {c.qa.question}", f"Proposed answer: {c.qa.answer}"],
                         self.refine_params, REFINE_SCHEMA, c.draft.request.request_id + ":refine")
            for c in live
        ]
        kept: list[_Candidate] = []
        for c, comp in zip(live, self._generate(self.refiner, requests)):
            out = outcomes[c.draft.path_index]
            self._count_tokens(out, comp)
            c.prompt_tokens += comp.prompt_tokens
            c.completion_tokens += comp.completion_tokens
            if not self._completion_ok(out, comp, "refinement"):
                continue
            try:
                refined = parse_refined_answer(comp.text)
            except ReplyError:
                out.dropped["refine_malformed"] += 1
                continue
            mine = extract_checkable(c.qa.answer)
            if mine is not None and not answers_agree(mine, extract_checkable(refined.answer)):
                out.dropped["refine_disagree"] += 1
                continue
            if mine is None:
                # Free-form: the (stronger) refiner's answer is the refinement.
                c.qa.answer = refined.answer
                c.qa.rationale = refined.rationale or c.qa.rationale
            elif refined.rationale:
                c.qa.rationale = refined.rationale
            c.models.append(self.refiner.model_name)
            kept.append(c)
        return kept

    # -- records ----------------------------------------------------------------------------------------------

    def _record(self, path: records_pb2.WalkPath, c: _Candidate) -> records_pb2.SynthQA:
        d, qa = c.draft, c.qa
        kps = qa.knowledge_points or list(path.kps) or list(dict.fromkeys(k for s in d.sources for k in s.kps))
        return records_pb2.SynthQA(
            id=synth_qa_id(qa.question, qa.answer),
            question=qa.question,
            answer=qa.answer,
            rationale=qa.rationale,
            kps=kps,
            # The sampler's target (a taxonomy name) wins over the model's free-text label.
            discipline=path.target_discipline or qa.discipline or self._discipline(path),
            difficulty=c.difficulty or d.grade or 0,
            path_id=path.id,
            path_kps=list(path.kps),
            source_seed_ids=[s.id for s in d.sources],
            models=c.models,
            prompt_version=d.template.id,
            prompt_tokens=c.prompt_tokens,
            completion_tokens=c.completion_tokens,
            mode=mode_value(d.mode),
            lang=detect_lang(qa.question, self.cfg.zh_min_cjk_share),
        )
