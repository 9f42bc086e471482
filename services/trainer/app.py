"""Wiring of the trainer service: a stage counting new QA tokens, a run controller, the gRPC servicer."""

from __future__ import annotations

from linksyn.common.bus.base import Bus
from linksyn.common.runtime.parts import ServiceParts
from linksyn.config import LinksynConfig
from linksyn.trainer.runs import RunController
from linksyn.trainer.servicer import TrainerServicer
from linksyn.trainer.stage import TrainerStage
from linksyn.v1 import trainer_pb2_grpc


def build(cfg: LinksynConfig, bus: Bus) -> ServiceParts:
    topics = cfg.bus.topics

    def publish(report) -> None:
        bus.produce(topics.probes, report.SerializeToString(), key=report.run_id.encode())
        bus.flush()

    controller = RunController(cfg.trainer, on_report=publish)
    return ServiceParts(
        name="trainer",
        stage=TrainerStage(topics.synth_qa, controller, cfg.trainer.start_after_tokens),
        servicers=[(trainer_pb2_grpc.add_TrainerServiceServicer_to_server, TrainerServicer(controller))],
        service_names=["linksyn.v1.TrainerService"],
        close=controller.close,
    )
