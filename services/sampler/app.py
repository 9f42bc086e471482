"""Wiring of the sampler service: snapshot source, the live sampler, the lag-paced path producer, the probes stage
and the SamplerService gRPC servicer."""

from __future__ import annotations

from linksyn.common.bus.base import Bus
from linksyn.common.config import SharedConfig
from linksyn.common.runtime.parts import ServiceParts
from linksyn.common.runtime.publish import Publisher
from linksyn.sampler.config import SamplerConfig
from linksyn.sampler.live import SERVICE, LiveSampler, grpc_source, store_source
from linksyn.common.spend import UsageFollower
from linksyn.sampler.budget import BudgetGate
from linksyn.sampler.pacing import LagPacedProducer, group_lag
from linksyn.sampler.servicer import SamplerServicer
from linksyn.sampler.stage import ProbesStage
from linksyn.v1 import sampler_pb2_grpc


def build(cfg: SamplerConfig, shared: SharedConfig, bus: Bus) -> ServiceParts:
    """The sampler: walks the newest graph snapshot (gRPC from sampler.graph_target, else the snapshot store at
    sampler.snapshot_store), emits paths just in time, shifts targets on probe reports. It runs until stopped, or
    until the limit of `SamplerConfig.path_limit` was emitted in all (`linksyn run` sets one), or until the budget
    (the shared `budget` section) is spent."""
    topics = shared.bus.topics
    # The graph service asks the same bearer token as every linksyn service (server.grpc_token).
    token = shared.server.grpc_token.get_secret_value() if shared.server.grpc_token is not None else None
    source = (
        grpc_source(cfg.graph_target, token=token, tls_ca=cfg.graph_tls_ca or None)
        if cfg.graph_target
        else store_source(cfg.snapshot_store)
    )
    sampler = LiveSampler(cfg, source, Publisher(bus, SERVICE).publish, topics.paths)
    bus.ensure_topics({topics.paths: topics.partitions})
    gate = None
    if shared.budget.limited():
        bus.ensure_topics({topics.usage: topics.control_partitions})
        gate = BudgetGate(shared.budget, UsageFollower(bus, topics.usage, shared.budget.run, SERVICE),
                          cfg.budget_service)
    producer = LagPacedProducer(
        sampler, group_lag(bus, cfg.lag_group, topics.paths), cfg.lag_target, cfg.batch_size, cfg.lag_poll_s,
        cfg.refresh_s, limit=cfg.path_limit, budget=gate,
    )
    return ServiceParts(
        name=SERVICE,
        stage=ProbesStage(sampler, topics.probes),
        servicers=[(sampler_pb2_grpc.add_SamplerServiceServicer_to_server, SamplerServicer(sampler))],
        service_names=["linksyn.v1.SamplerService"],
        background=[producer],
        close=sampler.persist,
    )
