"""The synth stage: `linksyn.paths` (WalkPath) -> `linksyn.synth-qa` (SynthQA), for the consumer loop.

Transport only: decode, one `Synthesizer.synthesize` call per batch (so every request of the batch goes to the
LLM in one `generate` call per round), encode, count.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Sequence

from linksyn.common.bus.base import Message, OutRecord
from linksyn.common.ids import question_key
from linksyn.common.modes import mode_name
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

    def __init__(self, synthesizer: Synthesizer, input_topic: str, output_topic: str, name: str = "synth") -> None:
        self.name = name
        self.input_topics = [input_topic]
        self.output_topic = output_topic
        self.synthesizer = synthesizer
        self._lock = threading.Lock()
        self.totals: Counter = Counter()
        """Running totals for the Stats RPC: paths, qa, failed, prompt_tokens, completion_tokens, drop:<reason>."""
        self._prompt_tokens = metrics.SYNTH_PROMPT_TOKENS.labels(service=name)
        self._completion_tokens = metrics.SYNTH_COMPLETION_TOKENS.labels(service=name)
        self._failed = metrics.SYNTH_PATHS_FAILED.labels(service=name)
        self._seconds = metrics.SYNTH_BATCH_SECONDS.labels(service=name)

    def process(self, batch: Sequence[Message]) -> list[Result]:
        decoded = decode_batch(batch, decode_path)
        results: list[Result | None] = [decoded.failed.get(i) for i in range(len(batch))]
        paths: list[records_pb2.WalkPath] = decoded.records
        slots = decoded.slots
        t0 = time.perf_counter()
        outcomes = self.synthesizer.synthesize(paths)
        self._seconds.observe(time.perf_counter() - t0)
        for i, out in zip(slots, outcomes):
            results[i] = self._result(out)
        self.count_outcomes(outcomes)
        return [r for r in results if r is not None]

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
