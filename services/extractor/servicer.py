"""gRPC ExtractorService: an Extract preview for one seed (nothing is produced) and Stats. Thin."""

from __future__ import annotations

import json
import time

import grpc

import linksyn
from linksyn.common.runtime.metrics import flattened_metrics
from linksyn.extractor.stage import ExtractorStage
from linksyn.v1 import common_pb2, extractor_pb2, extractor_pb2_grpc, records_pb2


class ExtractorServicer(extractor_pb2_grpc.ExtractorServiceServicer):
    """Annotates with the stage's own extractor (same model, prompt, taxonomy and KP vocabulary)."""

    def __init__(self, stage: ExtractorStage) -> None:
        self.stage = stage
        self.started = time.monotonic()

    def Extract(self, request: extractor_pb2.ExtractRequest, context: grpc.ServicerContext) -> records_pb2.AnnotatedSeed:
        if not request.seed.question.strip():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "seed.question is empty")
        (out,) = self.stage.extractor.extract([request.seed])
        if out.annotation is None:
            code = grpc.StatusCode.UNAVAILABLE if out.retryable else grpc.StatusCode.INVALID_ARGUMENT
            context.abort(code, out.error or "annotation failed")
        return out.annotation.to_proto(request.seed)

    def Stats(self, request: common_pb2.StatsRequest, context: grpc.ServicerContext) -> common_pb2.StatsReply:
        ex = self.stage.extractor
        details = {
            "totals": dict(ex.totals),
            "annotator": ex.annotator.annotator,
            "kp_vocabulary": len(ex.canon),
            "kp_merged": ex.canon.merged,
        }
        return common_pb2.StatsReply(
            service=self.stage.name,
            version=linksyn.__version__,
            uptime_s=time.monotonic() - self.started,
            counters=flattened_metrics(self.stage.name),
            details_json=json.dumps(details, sort_keys=True),
        )
