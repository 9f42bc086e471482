"""The LLM annotator: every request of a batch of seeds submitted at once, each reply parsed and validated on its own
as soon as it comes back (`annotate_stream`).

A failed request or an unusable reply fails that seed only (retryable: another sample or another try at the
server may succeed); the other seeds of the batch keep their annotations.
"""

from __future__ import annotations

import queue
from typing import Iterator, Sequence

from linksyn.common.llm.base import LLM, ChatRequest, Completion, SamplingParams
from linksyn.common.taxonomy import Taxonomy
from linksyn.extractor.annotation import Annotation, Outcome, SeedLabels, seed_labels
from linksyn.extractor.prompt import ExtractionPrompt
from linksyn.extractor.reply import (
    ReplyError,
    ReplyLimits,
    extraction_schema,
    parse_reply,
)
from linksyn.v1.records_pb2 import Seed


class LLMAnnotator:
    """KPs, discipline and difficulty from an LLM with a JSON schema."""

    from_text = False
    """An LLM may name a concept the text only implies: the extractor checks grounding."""

    def __init__(
        self,
        llm: LLM,
        taxonomy: Taxonomy,
        prompt: ExtractionPrompt,
        limits: ReplyLimits = ReplyLimits(),
        *,
        max_tokens: int = 192,
        temperature: float = 0.0,
        max_seed_chars: int = 4000,
        trust_seed_labels: bool = True,
    ) -> None:
        self.llm = llm
        self.taxonomy = taxonomy
        self.prompt = prompt
        self.limits = limits
        self.params = SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=0 if temperature else None)
        self.max_seed_chars = max_seed_chars
        self.trust_seed_labels = trust_seed_labels
        self.schema = extraction_schema(taxonomy, limits)
        self.annotator = f"llm:{llm.model_name}@{prompt.version}"

    def request(self, seed: Seed) -> ChatRequest:
        return ChatRequest(
            messages=self.prompt.messages(seed.question, seed.answer, self.max_seed_chars),
            params=self.params,
            json_schema=self.schema,
            request_id=seed.id,
        )

    def annotate(self, seeds: Sequence[Seed]) -> list[Outcome]:
        """One Outcome per seed, in order; raises only if the engine itself is unusable."""
        outcomes: list[Outcome | None] = [None] * len(seeds)
        for group in self.annotate_stream(seeds):
            for i, o in group:
                outcomes[i] = o
        return outcomes  # type: ignore[return-value]

    def annotate_stream(self, seeds: Sequence[Seed]) -> Iterator[list[tuple[int, Outcome]]]:
        """(index, Outcome) of every seed as its reply comes back, in groups: each group is every reply that was in
        when the previous group was handed out (so the caller can batch what follows, e.g. KP embedding)."""
        if not seeds:
            return
        futures = self.llm.submit([self.request(s) for s in seeds])
        if len(futures) != len(seeds):
            raise RuntimeError(
                f"LLM {self.llm.model_name!r} returned {len(futures)} completions for {len(seeds)} requests"
            )
        done: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i, f in enumerate(futures):
            f.add_done_callback(lambda _f, i=i: done.put(i))
        left = len(seeds)
        while left:
            got = [done.get()]
            while True:
                try:
                    got.append(done.get_nowait())
                except queue.Empty:
                    break
            left -= len(got)
            yield [(i, self.outcome(seeds[i], futures[i].result())) for i in got]

    def outcome(self, seed: Seed, c: Completion) -> Outcome:
        """The annotation of `seed` from its reply, or why there is none."""
        tokens = dict(prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens)
        if not c.ok:
            return Outcome.failed(f"LLM request failed: {c.error}", "llm", retryable=c.retryable, **tokens)
        labels = seed_labels(seed, self.taxonomy) if self.trust_seed_labels else SeedLabels()
        try:
            parsed = parse_reply(
                c.text, self.taxonomy, self.limits,
                need_discipline=not labels.discipline, need_difficulty=not labels.difficulty,
            )
        except ReplyError as e:
            cut = " (reply cut at max_tokens)" if c.finish_reason == "length" else ""
            return Outcome.failed(f"unusable LLM reply{cut}: {e}", "reply", retryable=True, **tokens)
        if labels.discipline:
            discipline = labels.discipline
            subdiscipline = labels.subdiscipline or (parsed.subdiscipline if parsed.discipline == discipline else "")
        else:
            discipline, subdiscipline = parsed.discipline or "", parsed.subdiscipline or ""
        difficulty = labels.difficulty or parsed.difficulty or 0
        return Outcome(Annotation(
            parsed.knowledge_points, discipline, subdiscipline or "", difficulty, self.annotator,
            repairs=parsed.repairs, **tokens,
        ), **tokens)
