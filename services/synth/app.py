"""Wiring of the synth service: models from config, the Synthesizer, the stage and its gRPC servicer."""

from __future__ import annotations

from linksyn.common.bus.base import Bus
from linksyn.common.llm import load_llm
from linksyn.common.runtime.parts import ServiceParts
from linksyn.config import LinksynConfig
from linksyn.synth.servicer import SynthServicer
from linksyn.synth.stage import SynthStage
from linksyn.synth.synthesis import Synthesizer
from linksyn.v1 import synth_pb2_grpc


def build(cfg: LinksynConfig, bus: Bus) -> ServiceParts:
    """The synth service: consumes paths, produces synth-qa. The bus is the loop's; the stage never touches it."""
    topics = cfg.bus.topics
    generator = load_llm(cfg.synth.model, cfg.synth.llm)
    refiner = load_llm(cfg.synth.refiner_model, cfg.synth.llm) if cfg.synth.refiner_model else None
    stage = SynthStage(Synthesizer(cfg.synth, generator, refiner), topics.paths, topics.synth_qa)

    def close() -> None:
        generator.close()
        if refiner is not None:
            refiner.close()

    return ServiceParts(
        name="synth",
        stage=stage,
        servicers=[(synth_pb2_grpc.add_SynthServiceServicer_to_server, SynthServicer(stage))],
        service_names=["linksyn.v1.SynthService"],
        close=close,
    )
