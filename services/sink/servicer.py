"""gRPC SinkService: Stats (thin)."""

from __future__ import annotations

from typing import Any, Mapping

from linksyn.common.runtime.stats import RuntimeStats
from linksyn.sink.stage import SinkStage
from linksyn.v1 import sink_pb2, sink_pb2_grpc  # noqa: F401 (sink_pb2 registers the service descriptor: reflection)


class SinkServicer(RuntimeStats, sink_pb2_grpc.SinkServiceServicer):
    """Reports the dataset's durable totals and the pending window."""

    def __init__(self, stage: SinkStage) -> None:
        self.stage = stage
        self.stats_service = stage.name

    def stats_details(self) -> Mapping[str, Any]:
        return self.stage.stats()
