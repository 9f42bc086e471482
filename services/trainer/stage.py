"""The trainer's consumer stage: counts the QA tokens arriving on `linksyn.synth-qa` and starts a run once enough
new ones arrived (the sink writes the dataset the run reads)."""

from __future__ import annotations

from typing import Sequence

from linksyn.common.bus.base import Message
from linksyn.common.runtime.stage import Result, decode_batch, protobuf_decoder
from linksyn.trainer import metrics
from linksyn.trainer.runs import RunController
from linksyn.v1 import records_pb2

decode_synth_qa = protobuf_decoder(records_pb2.SynthQA)


class TrainerStage:
    concurrent_batches = False

    def __init__(self, topic: str, controller: RunController, start_after_tokens: int) -> None:
        self.name = controller.service
        self.input_topics = [topic]
        self.controller = controller
        self.start_after_tokens = start_after_tokens
        self.pending_tokens = 0

    def process(self, batch: Sequence[Message]) -> list[Result]:
        decoded = decode_batch(batch, decode_synth_qa)
        results = [decoded.failed.get(i) or Result.ok() for i in range(len(batch))]
        for qa in decoded.records:
            # Approximate tokens (characters / 4) when the record carries no count: only a trigger threshold.
            tokens = qa.completion_tokens or (len(qa.question) + len(qa.answer)) // 4
            self.pending_tokens += tokens
            metrics.QA_TOKENS_SEEN.labels(service=self.name).inc(tokens)
        if self.pending_tokens >= self.start_after_tokens:
            try:
                self.controller.start()
                self.pending_tokens = 0
            except RuntimeError:
                pass  # a run is still going; the next batch tries again
        return results
