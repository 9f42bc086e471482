"""Wiring of the synth service: models from config, the Synthesizer, the stage and its gRPC servicer."""

from __future__ import annotations

from linksyn.common.bus.base import Bus
from linksyn.common.config import SharedConfig
from linksyn.common.llm import load_llm
from linksyn.common.runtime.parts import ServiceParts
from linksyn.common.runtime.publish import Publisher
from linksyn.common.spend import UsageMeter
from linksyn.synth.config import SynthConfig
from linksyn.synth.servicer import SynthServicer
from linksyn.synth.stage import SynthStage
from linksyn.synth.synthesis import Synthesizer
from linksyn.v1 import synth_pb2_grpc


def build(cfg: SynthConfig, shared: SharedConfig, bus: Bus) -> ServiceParts:
    """The synth service: consumes paths, produces synth-qa. The bus is the loop's; the stage never touches it."""
    topics = shared.bus.topics
    generator = load_llm(cfg.model, cfg.llm, service="synth")
    refiner = (load_llm(cfg.refiner_model, cfg.llm, main_model=cfg.model, service="synth")
               if cfg.refiner_model else None)
    bus.ensure_topics({topics.usage: topics.control_partitions})
    meter = UsageMeter("synth", [generator, refiner], shared.budget, Publisher(bus, "synth").publish, topics.usage,
                       records=lambda: stage.totals["paths"])
    stage = SynthStage(Synthesizer(cfg, generator, refiner), topics.paths, topics.synth_qa, meter=meter)

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
