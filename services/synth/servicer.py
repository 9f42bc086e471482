"""gRPC SynthService: a Synthesize preview (no Kafka) and Stats. Thin: decode, call the domain, encode."""

from __future__ import annotations

from typing import Any, Mapping

import grpc
from linksyn.common.runtime.stats import RuntimeStats
from linksyn.synth.stage import SynthStage
from linksyn.v1 import synth_pb2, synth_pb2_grpc


class SynthServicer(RuntimeStats, synth_pb2_grpc.SynthServiceServicer):
    """Serves previews with the stage's own synthesizer (same models, prompts and filters)."""

    def __init__(self, stage: SynthStage) -> None:
        self.stage = stage
        self.stats_service = stage.name

    def Synthesize(self, request: synth_pb2.SynthesizeRequest, context: grpc.ServicerContext) -> synth_pb2.SynthesizeReply:
        if not request.path.id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "path.id is empty")
        (out,) = self.stage.synthesizer.synthesize([request.path])
        if out.error is not None:
            code = grpc.StatusCode.UNAVAILABLE if out.retryable else grpc.StatusCode.INVALID_ARGUMENT
            context.abort(code, out.error)
        return synth_pb2.SynthesizeReply(qa=out.qas, dropped=dict(out.dropped))

    def stats_details(self) -> Mapping[str, Any]:
        synth = self.stage.synthesizer
        return {
            "totals": dict(self.stage.totals),
            "generator": synth.generator.model_name,
            "refiner": synth.refiner.model_name if synth.refiner else None,
            "prompt_versions": sorted(t.id for t in synth.templates.values()),
        }
