"""The synth stage: `linksyn.paths` (WalkPath) -> `linksyn.synth-qa` (SynthQA), for the consumer loop.

Transport only: decode, one `Synthesizer.synthesize_stream` per batch (every generation request of the batch is
sent at once), encode, count. A streaming stage: each path's Result is handed to the consumer loop as soon as the
path's own requests are done, so its QA leave while the rest of the batch is still being generated.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Iterator, Sequence

from linksyn.common.bus.base import Message, OutRecord
from linksyn.common.ids import question_key
from linksyn.common.modes import mode_name
from linksyn.common.spend.meter import UsageMeter
from linksyn.common.runtime.stage import (
    MalformedRecord,
    Result,
    decode_batch,
    protobuf_decoder,
)
from linksyn.synth import metrics
from linksyn.synth.synthesis import PathOutcome, Synthesizer
from linksyn.v1 import records_pb2


def check_path(path: records_pb2.WalkPath) -> None:
    """A WalkPath the synth can work on carries an id (its QA ids and request seeds derive from it)."""
    if not path.id:
        raise MalformedRecord(f"WalkPath without an id ({path.ByteSize()} bytes)", "no_id")


decode_path = protobuf_decoder(records_pb2.WalkPath, check_path)
"""A WalkPath from bytes; MalformedRecord (with the reason) if it does not parse or carries no id."""


class SynthStage:
    """Stage consuming WalkPaths and producing SynthQA records keyed by their normalised question
    (`linksyn.common.ids.question_key`: equal questions meet in one partition of synth-qa, where one sink replica
    holds their exact-duplicate state)."""

    def __init__(
        self, synthesizer: Synthesizer, input_topic: str, output_topic: str, name: str = "synth",
        meter: UsageMeter | None = None,
    ) -> None:
        self.name = name
        self.meter = meter
        """Reports the LLMs' spend (metrics, usage topic) and adds cost and per-model tokens to `totals`."""
        self.input_topics = [input_topic]
        self.output_topic = output_topic
        self.synthesizer = synthesizer
        self._lock = threading.Lock()
        self.totals: Counter = Counter()
        """Running totals for the Stats RPC and the run report: paths, qa, failed, prompt_tokens, completion_tokens,
        drop:<reason>; with a meter also cost, and cost/prompt_tokens/completion_tokens per model
        (`<what>:<model>`)."""
        self._prompt_tokens = metrics.SYNTH_PROMPT_TOKENS.labels(service=name)
        self._completion_tokens = metrics.SYNTH_COMPLETION_TOKENS.labels(service=name)
        self._failed = metrics.SYNTH_PATHS_FAILED.labels(service=name)
        self._seconds = metrics.SYNTH_BATCH_SECONDS.labels(service=name)

    def process_stream(self, batch: Sequence[Message]) -> Iterator[tuple[int, Result]]:
        decoded = decode_batch(batch, decode_path)
        yield from decoded.failed.items()
        paths: list[records_pb2.WalkPath] = decoded.records
        t0 = time.perf_counter()
        for k, out in self.synthesizer.synthesize_stream(paths):
            self.count_outcomes([out])
            yield decoded.slots[k], self._result(out)
        self._seconds.observe(time.perf_counter() - t0)

    def process(self, batch: Sequence[Message]) -> list[Result]:
        """The whole batch's Results at once, in order (what process_stream yields, collected)."""
        results: list[Result | None] = [None] * len(batch)
        for i, r in self.process_stream(batch):
            results[i] = r
        return results  # type: ignore[return-value]

    def tick(self) -> None:
        """From the consumer loop, about once a second: the spend report is due every budget.report_every_s."""
        if self.meter is not None:
            self.meter.tick()
            self._add_spend()

    def close(self) -> None:
        """The last spend report of this replica (after the last batch)."""
        if self.meter is not None:
            self.meter.report()
            self._add_spend()

    def _add_spend(self) -> None:
        assert self.meter is not None
        spend = self.meter.totals()
        with self._lock:
            for k, v in spend.items():  # cumulative figures: replaced, not added (Counter.update would add)
                self.totals[k] = v

    def _result(self, out: PathOutcome) -> Result:
        if out.error is not None:
            return Result.failed(f"path {out.path_id}: {out.error}", permanent=not out.retryable)
        return Result.ok(
            *(OutRecord(self.output_topic, qa.SerializeToString(), key=question_key(qa.question)) for qa in out.qas)
        )

    def count_outcomes(self, outcomes: Sequence[PathOutcome]) -> None:
        """Count an outcome batch in metrics and the Stats totals (tokens count even for failed paths: they were
        spent; drops and QA only for paths that succeeded, since a failed path is retried)."""
        with self._lock:
            for out in outcomes:
                self.totals["paths"] += 1
                self.totals["prompt_tokens"] += out.prompt_tokens
                self.totals["completion_tokens"] += out.completion_tokens
                self._prompt_tokens.inc(out.prompt_tokens)
                self._completion_tokens.inc(out.completion_tokens)
                if out.error is not None:
                    self.totals["failed"] += 1
                    self._failed.inc()
                    continue
                for reason, n in out.dropped.items():
                    self.totals[f"drop:{reason}"] += n
                    metrics.SYNTH_DROPPED.labels(service=self.name, reason=reason).inc(n)
                for qa in out.qas:
                    self.totals["qa"] += 1
                    metrics.SYNTH_QA.labels(service=self.name, mode=mode_name(qa.mode)).inc()
