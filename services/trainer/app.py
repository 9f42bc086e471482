"""Wiring of the trainer service: a stage counting new QA tokens, a run controller, the gRPC servicer."""

from __future__ import annotations

from linksyn.common.bus.base import Bus, OutRecord
from linksyn.common.config import SharedConfig
from linksyn.common.runtime.parts import ServiceParts
from linksyn.common.runtime.publish import Publisher
from linksyn.trainer.config import TrainerConfig
from linksyn.trainer.runs import RunController
from linksyn.trainer.servicer import TrainerServicer
from linksyn.trainer.stage import TrainerStage
from linksyn.v1 import records_pb2, trainer_pb2_grpc

SERVICE = "trainer"


def build(cfg: TrainerConfig, shared: SharedConfig, bus: Bus) -> ServiceParts:
    """The trainer service: starts runs once enough new QA arrived (or on StartRun), probes what they make and
    publishes each ProbeReport to linksyn.probes (keyed by run id)."""
    topics = shared.bus.topics
    publisher = Publisher(bus, SERVICE)

    def publish(report: records_pb2.ProbeReport) -> None:
        publisher.publish([OutRecord(topics.probes, report.SerializeToString(), key=report.run_id.encode())])

    controller = RunController(cfg, on_report=publish, service=SERVICE)
    return ServiceParts(
        name=SERVICE,
        stage=TrainerStage(topics.synth_qa, controller, cfg.start_after_tokens),
        servicers=[(trainer_pb2_grpc.add_TrainerServiceServicer_to_server, TrainerServicer(controller))],
        service_names=["linksyn.v1.TrainerService"],
        close=controller.close,
        token_required="trainer.launcher is 'kubernetes', so StartRun creates Jobs in the cluster"
        if cfg.launcher == "kubernetes" else None,
    )
