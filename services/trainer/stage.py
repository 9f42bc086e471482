"""The trainer's consumer stage: counts the QA tokens arriving on `linksyn.synth-qa` and starts a run once enough
new ones arrived (the sink writes the dataset the run reads)."""

from __future__ import annotations

from typing import Sequence

from linksyn.common.bus.base import Message
from linksyn.common.runtime.stage import Result
from linksyn.trainer import metrics
from linksyn.trainer.runs import RunController
from linksyn.v1 import records_pb2


class TrainerStage:
    name = "trainer"
    concurrent_batches = False

    def __init__(self, topic: str, controller: RunController, start_after_tokens: int) -> None:
        self.input_topics = [topic]
        self.controller = controller
        self.start_after_tokens = start_after_tokens
        self.pending_tokens = 0

    def process(self, batch: Sequence[Message]) -> list[Result]:
        results = []
        for m in batch:
            qa = records_pb2.SynthQA()
            try:
                qa.ParseFromString(m.value)
            except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and others
                results.append(Result.failed(f"undecodable SynthQA: {e}", permanent=True))
                continue
            # Approximate tokens (characters / 4) when the record carries no count: only a trigger threshold.
            tokens = qa.completion_tokens or (len(qa.question) + len(qa.answer)) // 4
            self.pending_tokens += tokens
            metrics.QA_TOKENS_SEEN.inc(tokens)
            results.append(Result.ok())
        if self.pending_tokens >= self.start_after_tokens:
            try:
                self.controller.start()
                self.pending_tokens = 0
            except RuntimeError:
                pass  # a run is still going; the next batch tries again
        return results
