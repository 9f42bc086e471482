"""Wiring of the extractor service: annotator (LLM or keyphrase) from config, the stage and its gRPC servicer."""

from __future__ import annotations

from linksyn.common.bus.base import Bus
from linksyn.common.config import SharedConfig
from linksyn.common.llm import load_llm
from linksyn.common.runtime.parts import ServiceParts
from linksyn.common.runtime.publish import Publisher
from linksyn.common.spend import UsageMeter
from linksyn.extractor.config import ExtractorConfig
from linksyn.extractor.embedding import shared_embedder
from linksyn.extractor.extractor import Extractor
from linksyn.extractor.servicer import ExtractorServicer
from linksyn.extractor.stage import ExtractorStage
from linksyn.v1 import extractor_pb2_grpc


def build(cfg: ExtractorConfig, shared: SharedConfig, bus: Bus) -> ServiceParts:
    """The extractor service: consumes seeds, produces seed-kps. The bus is the loop's; the stage never touches it."""
    topics = shared.bus.topics
    llm = load_llm(cfg.model, cfg.llm, service="extractor") if cfg.mode == "llm" else None
    minilm = cfg.kp_merge and any(e.model == "minilm" for e in cfg.kp_embedders)
    embedder = shared_embedder() if cfg.mode == "keyphrase" or minilm else None
    extractor = Extractor.from_config(cfg, llm=llm, embedder=embedder)
    meter = None
    if llm is not None:
        bus.ensure_topics({topics.usage: topics.control_partitions})
        meter = UsageMeter("extractor", [llm], shared.budget, Publisher(bus, "extractor").publish, topics.usage,
                           records=lambda: extractor.totals["annotated"] + extractor.totals["failed"])
    stage = ExtractorStage(extractor, topics.seeds, topics.seed_kps, meter=meter)
    return ServiceParts(
        name="extractor",
        stage=stage,
        servicers=[(extractor_pb2_grpc.add_ExtractorServiceServicer_to_server, ExtractorServicer(stage))],
        service_names=["linksyn.v1.ExtractorService"],
        close=llm.close if llm is not None else None,
    )
