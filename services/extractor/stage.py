"""The extractor's consumer stage: seeds in (Seed protobuf or JSON: linksyn.common.seeds.wire), AnnotatedSeed
records out (keyed by seed id).

Thin transport: decode, call `Extractor.extract_stream` on the whole batch (every LLM request sent at once), encode
one Result per record as its reply comes back (a streaming stage: annotated seeds leave while the rest of the batch
is still being generated). A malformed record fails permanently (dead-lettered at once); a seed whose reply was
unusable fails alone and is retried by the loop, then dead-lettered with the reason; the rest of the batch is
unaffected.
"""

from __future__ import annotations

import time
from typing import Iterator, Sequence

from linksyn.common.bus.base import Message, OutRecord
from linksyn.common.ids import content_id
from linksyn.common.runtime.stage import MalformedRecord, Result, decode_messages
from linksyn.common.seeds.wire import content_type, decode_seed_value
from linksyn.common.spend.meter import UsageMeter
from linksyn.extractor import metrics
from linksyn.extractor.annotation import Outcome
from linksyn.extractor.extractor import Extractor
from linksyn.v1.records_pb2 import Seed


def check_seed(seed: Seed) -> None:
    """A Seed we can annotate: a question is required; a missing id is derived as linksyn's seed readers do."""
    if not seed.question.strip():
        raise MalformedRecord(f"seed {seed.id!r} has an empty question", "empty_question")
    if not seed.id:
        seed.id = content_id(seed.question, seed.answer)


def decode_seed(msg: Message) -> Seed:
    """The Seed of a record of the seeds topic, protobuf or JSON (linksyn.common.seeds.wire says how it tells);
    MalformedRecord with the reason if it is not one we can annotate."""
    seed = decode_seed_value(msg.value, content_type(msg.headers), f"{msg.topic}:{msg.partition}:{msg.offset}")
    check_seed(seed)
    return seed


class ExtractorStage:
    """Stage contract (linksyn.common.runtime.stage.Stage); batches run concurrently (the extractor is thread-safe)."""

    concurrent_batches = True

    def __init__(
        self, extractor: Extractor, input_topic: str, output_topic: str, name: str = "extractor",
        meter: UsageMeter | None = None,
    ) -> None:
        self.extractor = extractor
        self.meter = meter
        """Reports the LLM's spend (metrics, usage topic); its cost and per-model tokens join `totals`."""
        self.name = name
        self.input_topics = [input_topic]
        self.output_topic = output_topic

    @property
    def totals(self) -> dict[str, float]:
        """The run report's totals: the extractor's (seeds annotated and failed, tokens, KPs kept, dropped by reason,
        ungrounded, merged); with a meter also cost and cost/prompt_tokens/completion_tokens per model as
        `<what>:<model>`."""
        out: dict[str, float] = dict(self.extractor.totals)
        if self.meter is not None:
            out.update(self.meter.totals())
        return out

    def tick(self) -> None:
        if self.meter is not None:
            self.meter.tick()

    def close(self) -> None:
        if self.meter is not None:
            self.meter.report()

    def process_stream(self, batch: Sequence[Message]) -> Iterator[tuple[int, Result]]:
        decoded = decode_messages(batch, decode_seed)
        yield from decoded.failed.items()
        seeds: list[Seed] = decoded.records
        start = time.perf_counter()
        for group in self.extractor.extract_stream(seeds):
            for k, o in group:
                yield decoded.slots[k], self._result(seeds[k], o)
        metrics.LATENCY.labels(self.name).observe(time.perf_counter() - start)
        metrics.KP_VOCABULARY.labels(self.name).set(len(self.extractor.canon))

    def process(self, batch: Sequence[Message]) -> list[Result]:
        """The whole batch's Results at once, in order (what process_stream yields, collected)."""
        results: list[Result | None] = [None] * len(batch)
        for i, r in self.process_stream(batch):
            results[i] = r
        return results  # type: ignore[return-value]

    def _result(self, seed: Seed, o: Outcome) -> Result:
        metrics.TOKENS.labels(self.name, "prompt").inc(o.prompt_tokens)
        metrics.TOKENS.labels(self.name, "completion").inc(o.completion_tokens)
        for reason, n in o.kp_drops.items():
            metrics.KPS_DROPPED.labels(self.name, reason).inc(n)
        metrics.KPS_UNGROUNDED.labels(self.name).inc(o.ungrounded)
        if o.annotation is None:
            if o.cause == "reply":
                metrics.PARSE_FAILURES.labels(self.name).inc()
            elif o.cause == "llm":
                metrics.LLM_FAILURES.labels(self.name).inc()
            return Result.failed(o.error or "annotation failed", permanent=not o.retryable)
        metrics.ANNOTATED.labels(self.name).inc()
        if o.annotation.repairs:
            metrics.REPAIRS.labels(self.name).inc(len(o.annotation.repairs))
        out = o.annotation.to_proto(seed)
        return Result.ok(OutRecord(self.output_topic, out.SerializeToString(), key=seed.id.encode()))
