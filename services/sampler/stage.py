"""The sampler's consumer stage: ProbeReport records on linksyn.probes shift the targets."""

from __future__ import annotations

from typing import Sequence

from google.protobuf.message import DecodeError

from linksyn.common.bus.base import Message
from linksyn.common.runtime.stage import Result
from linksyn.sampler.service import SamplerService
from linksyn.v1 import records_pb2


class ProbesStage:
    name = "sampler"
    concurrent_batches = False

    def __init__(self, service: SamplerService, probes_topic: str) -> None:
        self.service = service
        self.input_topics = [probes_topic]

    def process(self, batch: Sequence[Message]) -> list[Result]:
        out = []
        for m in batch:
            try:
                report = records_pb2.ProbeReport.FromString(m.value)
            except DecodeError as e:
                out.append(Result.failed(f"not a ProbeReport ({len(m.value)} bytes): {e}", permanent=True))
                continue
            try:
                self.service.apply_probes(report)
            except LookupError as e:  # no snapshot yet: retry later
                out.append(Result.failed(str(e)))
                continue
            out.append(Result.ok())
        return out

    def close(self) -> None:
        self.service.persist()
