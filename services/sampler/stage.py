"""The sampler's consumer stage: ProbeReport records on linksyn.probes shift the targets."""

from __future__ import annotations

import math
from typing import Sequence

from linksyn.common.bus.base import Message
from linksyn.common.runtime.stage import MalformedRecord, Result, decode_batch, protobuf_decoder
from linksyn.sampler.live import LiveSampler
from linksyn.v1 import records_pb2

def check_probe_report(report: records_pb2.ProbeReport) -> None:
    """A report whose accuracies or deficits are not finite would poison the targets: refuse it (dead letter)."""
    for b in report.buckets:
        if not (math.isfinite(b.accuracy) and math.isfinite(b.deficit)):
            raise MalformedRecord(f"probe bucket {b.discipline!r:.60}/{b.difficulty} has accuracy {b.accuracy} and "
                                  f"deficit {b.deficit}: both must be finite", "not_finite")


decode_probe_report = protobuf_decoder(records_pb2.ProbeReport, check_probe_report)


class ProbesStage:
    name = "sampler"
    concurrent_batches = False

    def __init__(self, sampler: LiveSampler, probes_topic: str) -> None:
        self.sampler = sampler
        self.input_topics = [probes_topic]

    def process(self, batch: Sequence[Message]) -> list[Result]:
        decoded = decode_batch(batch, decode_probe_report)
        results = [decoded.failed.get(i) or Result.ok() for i in range(len(batch))]
        for i, report in zip(decoded.slots, decoded.records):
            try:
                self.sampler.apply_probes(report)
            except LookupError as e:  # no snapshot yet: retry later
                results[i] = Result.failed(str(e))
        return results

    def close(self) -> None:
        self.sampler.persist()
