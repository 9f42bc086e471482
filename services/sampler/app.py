"""Wiring of the sampler service: snapshot source, SamplerService, the just-in-time producer, the probes stage
and the SamplerService gRPC servicer."""

from __future__ import annotations

from linksyn.common.bus.base import Bus
from linksyn.common.runtime.parts import ServiceParts
from linksyn.config import LinksynConfig
from linksyn.sampler.jit import JustInTimeProducer, group_lag
from linksyn.sampler.servicer import SamplerServicer
from linksyn.sampler.service import SamplerService, grpc_source, store_source
from linksyn.sampler.stage import ProbesStage
from linksyn.v1 import sampler_pb2_grpc


def build(cfg: LinksynConfig, bus: Bus) -> ServiceParts:
    """The sampler: walks the newest graph snapshot (gRPC from sampler.graph_target, else the snapshot store at
    sampler.snapshot_store or graph.snapshot_url), emits paths just in time, shifts targets on probe reports.
    On the in-memory bus (`linksyn run`) it emits exactly `embedded_paths` paths and stops; on Kafka it runs until
    stopped, or until `max_paths` paths were emitted in all when that is set."""
    s = cfg.sampler
    topics = cfg.bus.topics
    # The graph service asks the same bearer token as every linksyn service (server.grpc_token).
    token = cfg.server.grpc_token.get_secret_value() if cfg.server.grpc_token is not None else None
    source = (
        grpc_source(s.graph_target, token=token, tls_ca=s.graph_tls_ca or None)
        if s.graph_target
        else store_source(s.snapshot_store or cfg.graph.snapshot_url)
    )
    service = SamplerService(s, source, bus, topics.paths)
    bus.ensure_topics({topics.paths: topics.partitions})
    lag = group_lag(bus, s.lag_group, topics.paths)
    embedded = cfg.bus.kind == "memory"
    limit = (s.embedded_paths or None) if embedded else (s.max_paths or None)
    auto_limit = (lambda n_seeds: min(2 * n_seeds, s.embedded_paths_cap)) if embedded and limit is None else None
    producer = JustInTimeProducer(service, lag, s.lag_target, s.batch_size, s.lag_poll_s, s.refresh_s, limit, auto_limit)

    def close() -> None:
        service.persist()

    return ServiceParts(
        name="sampler",
        stage=ProbesStage(service, topics.probes),
        servicers=[(sampler_pb2_grpc.add_SamplerServiceServicer_to_server, SamplerServicer(service))],
        service_names=["linksyn.v1.SamplerService"],
        background=[producer],
        close=close,
    )
