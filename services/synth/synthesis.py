"""Synthesis of new QA from walk paths: request planning, generation rounds, hard-mode re-annotation, refinement,
filters, and the SynthQA records with their lineage.

No I/O of its own: it is given LLM objects. Every generation request of a batch of paths is submitted at once (an
in-process engine gets one large batch, an OpenAI-compatible backend has them all in flight); as replies come back,
each candidate's follow-up requests (difficulty ratings for hard mode, then refinement) are submitted together with
those of every other reply that is in by then, and a path's outcome is handed out as soon as its own last request is
done (`synthesize_stream`), not when the batch's slowest request is.
"""

from __future__ import annotations

import queue
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

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
    order: int = 0
    """Position among the path's drafts: its QA keep this order whatever order the replies come in."""


@dataclass
class _Candidate:
    """A generated QA that passed parsing and filters, on its way through rating and refinement."""

    draft: _Draft
    qa: GeneratedQA
    prompt_tokens: int
    completion_tokens: int
    difficulty: int = 0
    models: list[str] = field(default_factory=list)
    ratings: dict[bool, int | None] = field(default_factory=dict)
    """Hard mode: the rewrite's rating (False) and the source's (True) as they come in; None if malformed."""
    awaiting: int = 0
    """Rating replies still out."""


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
                       seeds, grade=g, order=k)
                for k, g in enumerate(grades)
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

    # -- the requests ------------------------------------------------------------------------------------------

    def synthesize(self, paths: Sequence[records_pb2.WalkPath]) -> list[PathOutcome]:
        """One outcome per path, in order. An LLM failure fails only the paths whose requests failed."""
        outcomes: list[PathOutcome | None] = [None] * len(paths)
        for i, out in self.synthesize_stream(paths):
            outcomes[i] = out
        return outcomes  # type: ignore[return-value]

    def synthesize_stream(self, paths: Sequence[records_pb2.WalkPath]) -> Iterator[tuple[int, PathOutcome]]:
        """(index, outcome) of every path, each as soon as its own requests (generation, ratings, refinement) are
        done. Raises only if an engine is unusable (the paths not handed out yet then fail together)."""
        run = _Run(self, paths)
        drafts: list[_Draft] = []
        for i, p in enumerate(paths):
            try:
                drafts.extend(self.plan(p, i))
            except ValueError as e:
                run.outcomes[i].error, run.outcomes[i].retryable = str(e), False
        run.send(self.generator, [(d.request, d.path_index, lambda c, d=d: self._on_generated(run, d, c))
                                  for d in drafts])
        yield from run.finished()
        while run.pending:
            run.take_replies()
            yield from run.finished()

    def _on_generated(self, run: "_Run", d: _Draft, c: Completion) -> None:
        out = run.outcomes[d.path_index]
        self._count_tokens(out, c)
        if not self._completion_ok(out, c, "generation"):
            return
        try:
            qa = parse_generated_qa(c.text)
        except ReplyError:
            out.dropped["malformed"] += 1
            return
        p = run.paths[d.path_index]
        reason = first_failed_filter(qa, self._expected_lang(p), [s.question for s in p.seeds], self.cfg)
        if reason:
            out.dropped[reason] += 1
            return
        cand = _Candidate(d, qa, c.prompt_tokens, c.completion_tokens, models=[self.generator.model_name])
        cand.difficulty = d.grade if d.mode == "multi_grade" else (qa.difficulty or d.grade)
        if d.mode == "hard":
            self._rate(run, cand)
        else:
            self._to_refine(run, cand)

    def _rate(self, run: "_Run", c: _Candidate) -> None:
        """Re-annotate a hard rewrite (and its source when its difficulty is unknown), both in the same call."""
        rid = c.draft.request.request_id
        asks = [(self._rating_request(c.qa.question, rid + ":rate"), False)]
        if not c.draft.source_difficulty:
            asks.append((self._rating_request(c.draft.sources[0].question, rid + ":rate-src"), True))
        c.awaiting = len(asks)
        run.follow(self.generator, [(r, c.draft.path_index, lambda comp, src=src: self._on_rated(run, c, src, comp))
                                    for r, src in asks])

    def _on_rated(self, run: "_Run", c: _Candidate, is_src: bool, comp: Completion) -> None:
        out = run.outcomes[c.draft.path_index]
        self._count_tokens(out, comp)
        c.prompt_tokens += comp.prompt_tokens
        c.completion_tokens += comp.completion_tokens
        c.awaiting -= 1
        if not self._completion_ok(out, comp, "difficulty rating"):
            return
        try:
            c.ratings[is_src] = parse_rating(comp.text)
        except ReplyError:
            c.ratings[is_src] = None
        if c.awaiting or out.error is not None:
            return
        new = c.ratings.get(False)
        src = c.draft.source_difficulty or c.ratings.get(True)
        if new is None or src is None:
            out.dropped["rating_malformed"] += 1
        elif new <= src:
            out.dropped["not_harder"] += 1
        else:
            c.difficulty = new
            self._to_refine(run, c)

    def _to_refine(self, run: "_Run", c: _Candidate) -> None:
        """Have the refiner answer the question (checkable answers must agree, free-form ones are replaced); without
        a refiner the candidate is final."""
        if self.refiner is None:
            run.finals[c.draft.path_index].append(c)
            return
        request = chat_request(self.refine_template, [f"Question: {c.qa.question}", f"Proposed answer: {c.qa.answer}"],
                               self.refine_params, REFINE_SCHEMA, c.draft.request.request_id + ":refine")
        run.follow(self.refiner, [(request, c.draft.path_index, lambda comp: self._on_refined(run, c, comp))])

    def _on_refined(self, run: "_Run", c: _Candidate, comp: Completion) -> None:
        out = run.outcomes[c.draft.path_index]
        self._count_tokens(out, comp)
        c.prompt_tokens += comp.prompt_tokens
        c.completion_tokens += comp.completion_tokens
        if not self._completion_ok(out, comp, "refinement"):
            return
        try:
            refined = parse_refined_answer(comp.text)
        except ReplyError:
            out.dropped["refine_malformed"] += 1
            return
        mine = extract_checkable(c.qa.answer)
        if mine is not None and not answers_agree(mine, extract_checkable(refined.answer)):
            out.dropped["refine_disagree"] += 1
            return
        if mine is None:
            # Free-form: the (stronger) refiner's answer is the refinement.
            c.qa.answer = refined.answer
            c.qa.rationale = refined.rationale or c.qa.rationale
        elif refined.rationale:
            c.qa.rationale = refined.rationale
        assert self.refiner is not None
        c.models.append(self.refiner.model_name)
        run.finals[c.draft.path_index].append(c)

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

    def _rating_request(self, question: str, rid: str) -> ChatRequest:
        return chat_request(self.rate_template, [f"Question: {question[: self.cfg.max_seed_chars]}"],
                            self.rate_params, RATING_SCHEMA, rid)


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


Handler = Callable[[Completion], None]
Ask = tuple[ChatRequest, int, Handler]
"""A request to send, the index of the path it is for, and what to do with its reply."""


class _Run:
    """The requests of one `synthesize_stream` call: replies arrive on a queue from the engines' threads and are
    handled on the caller's thread (so the path state needs no lock); a path is finished once none of its requests
    is out. Follow-ups asked for while handling replies are sent together, one submit per model, after every reply
    that was in by then is handled: an engine that answers a whole batch at once gets the next round as one batch."""

    def __init__(self, synth: Synthesizer, paths: Sequence[records_pb2.WalkPath]) -> None:
        self.synth = synth
        self.paths = paths
        self.outcomes = [PathOutcome(path_id=p.id) for p in paths]
        self.finals: list[list[_Candidate]] = [[] for _ in paths]
        """Candidates of each path that passed every check."""
        self.out = [0] * len(paths)
        """Requests of each path sent (or about to be) whose reply has not been handled."""
        self.handed = [False] * len(paths)
        self.pending = 0
        """Requests sent whose reply has not been handled."""
        self.replies: queue.SimpleQueue[tuple[Future[Completion], int, Handler]] = queue.SimpleQueue()
        self._follow: dict[int, tuple[LLM, list[Ask]]] = {}

    def send(self, llm: LLM, asks: list[Ask]) -> None:
        for _, i, _ in asks:
            self.out[i] += 1
        self._submit(llm, asks)

    def follow(self, llm: LLM, asks: list[Ask]) -> None:
        """Queue follow-up requests (sent after the replies in hand are handled); a failed path asks nothing more."""
        asks = [a for a in asks if self.outcomes[a[1]].error is None]
        for _, i, _ in asks:
            self.out[i] += 1  # counted now, so the path does not look finished before they are sent
        if asks:
            self._follow.setdefault(id(llm), (llm, []))[1].extend(asks)

    def _submit(self, llm: LLM, asks: list[Ask]) -> None:
        if not asks:
            return
        futures = llm.submit([r for r, _, _ in asks])
        if len(futures) != len(asks):
            raise RuntimeError(f"{llm.model_name} returned {len(futures)} futures for {len(asks)} requests")
        self.pending += len(asks)
        for f, (_, i, handler) in zip(futures, asks):
            f.add_done_callback(lambda f, i=i, h=handler: self.replies.put((f, i, h)))

    def take_replies(self) -> None:
        """Wait for a reply, handle it and every other one already in, then send the follow-ups they asked for."""
        got = [self.replies.get()]
        while True:
            try:
                got.append(self.replies.get_nowait())
            except queue.Empty:
                break
        for f, i, handler in got:
            self.pending -= 1
            self.out[i] -= 1
            handler(f.result())  # raises only if the engine is unusable
        follow, self._follow = self._follow, {}
        for llm, asks in follow.values():
            self._submit(llm, asks)

    def finished(self) -> Iterator[tuple[int, PathOutcome]]:
        """Paths with no request out that were not handed out yet, with their records."""
        for i, out in enumerate(self.outcomes):
            if self.handed[i] or self.out[i]:
                continue
            self.handed[i] = True
            if out.error is None:
                kept = sorted(self.finals[i], key=lambda c: c.draft.order)
                out.qas = [self.synth._record(self.paths[i], c) for c in kept]
            yield i, out
