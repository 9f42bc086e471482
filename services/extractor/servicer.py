"""gRPC ExtractorService: an Extract preview for one seed (nothing is produced) and Stats. Thin."""

from __future__ import annotations

from typing import Any, Mapping

import grpc
from linksyn.common.runtime.stats import RuntimeStats
from linksyn.extractor.stage import ExtractorStage
from linksyn.v1 import extractor_pb2, extractor_pb2_grpc, records_pb2


class ExtractorServicer(RuntimeStats, extractor_pb2_grpc.ExtractorServiceServicer):
    """Annotates with the stage's own extractor (same model, prompt, taxonomy and KP vocabulary)."""

    def __init__(self, stage: ExtractorStage) -> None:
        self.stage = stage
        self.stats_service = stage.name

    def Extract(self, request: extractor_pb2.ExtractRequest, context: grpc.ServicerContext) -> records_pb2.AnnotatedSeed:
        if not request.seed.question.strip():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "seed.question is empty")
        (out,) = self.stage.extractor.extract([request.seed])
        if out.annotation is None:
            code = grpc.StatusCode.UNAVAILABLE if out.retryable else grpc.StatusCode.INVALID_ARGUMENT
            context.abort(code, out.error or "annotation failed")
        return out.annotation.to_proto(request.seed)

    def stats_details(self) -> Mapping[str, Any]:
        ex = self.stage.extractor
        return {
            "totals": dict(ex.totals),
            "annotator": ex.annotator.annotator,
            "kp_vocabulary": len(ex.canon),
            "kp_merged": ex.canon.merged,
        }
