"""Wiring of the sink service (`linksyn serve sink`): the sink stage on `synth-qa` and its gRPC servicer."""

from __future__ import annotations

from linksyn.common.bus.base import Bus
from linksyn.common.config import SharedConfig
from linksyn.common.runtime.parts import ServiceParts
from linksyn.common.runtime.publish import Publisher
from linksyn.common.spend import UsageFollower
from linksyn.sink.config import SinkConfig
from linksyn.sink.servicer import SinkServicer
from linksyn.sink.stage import SinkStage
from linksyn.v1 import sink_pb2_grpc


def build(cfg: SinkConfig, shared: SharedConfig, bus: Bus) -> ServiceParts:
    """The sink service, configured by the `sink` section. Restores its dedup state from the dataset's state folder;
    with `kept_topic` set, also publishes kept rows there (the topic is created if absent). The run's LLM spend
    (the usage topic) goes into the dataset card."""
    topics = shared.bus.topics
    publish = None
    if cfg.kept_topic:
        bus.ensure_topics({cfg.kept_topic: topics.partitions})
        publish = Publisher(bus, "sink").publish
    bus.ensure_topics({topics.usage: topics.control_partitions})
    usage = UsageFollower(bus, topics.usage, shared.budget.run, "sink")
    stage = SinkStage(cfg, topics.synth_qa, publish=publish, usage=usage, currency=shared.budget.currency)

    def close() -> None:
        stage.flush()
        usage.close()

    return ServiceParts(
        name="sink",
        stage=stage,
        servicers=[(sink_pb2_grpc.add_SinkServiceServicer_to_server, SinkServicer(stage))],
        service_names=["linksyn.v1.SinkService"],
        close=close,
    )
