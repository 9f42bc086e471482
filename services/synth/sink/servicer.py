"""gRPC SinkService: Stats (thin)."""

from __future__ import annotations

import json
import time

import grpc

import linksyn
from linksyn.common.runtime.metrics import flattened_metrics
from linksyn.synth.sink.stage import SinkStage
from linksyn.v1 import common_pb2, synth_pb2_grpc


class SinkServicer(synth_pb2_grpc.SinkServiceServicer):
    """Reports the dataset's durable totals and the pending window."""

    def __init__(self, stage: SinkStage) -> None:
        self.stage = stage
        self.started = time.monotonic()

    def Stats(self, request: common_pb2.StatsRequest, context: grpc.ServicerContext) -> common_pb2.StatsReply:
        return common_pb2.StatsReply(
            service=self.stage.name,
            version=linksyn.__version__,
            uptime_s=time.monotonic() - self.started,
            counters=flattened_metrics(self.stage.name),
            details_json=json.dumps(self.stage.stats(), sort_keys=True),
        )
