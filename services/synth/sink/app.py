"""Wiring of the sink service (`linksyn serve sink`): the sink stage on `synth-qa` and its gRPC servicer."""

from __future__ import annotations

from linksyn.common.bus.base import Bus
from linksyn.common.runtime.parts import ServiceParts
from linksyn.config import LinksynConfig
from linksyn.synth.sink.servicer import SinkServicer
from linksyn.synth.sink.stage import SinkStage
from linksyn.v1 import synth_pb2_grpc


def build_sink(cfg: LinksynConfig, bus: Bus) -> ServiceParts:
    """The sink service, configured by `synth.sink`. Restores its dedup state from the dataset's state folder."""
    stage = SinkStage(cfg.synth.sink, cfg.bus.topics.synth_qa)
    return ServiceParts(
        name="sink",
        stage=stage,
        servicers=[(synth_pb2_grpc.add_SinkServiceServicer_to_server, SinkServicer(stage))],
        service_names=["linksyn.v1.SinkService"],
        close=stage.flush,
    )


build = build_sink
"""Alias, so the generic `linksyn.<svc>.app.build` lookup also works for `linksyn.synth.sink.app`."""
