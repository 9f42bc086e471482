"""Wiring of the graph service: the snapshot store, the stage (which resumes from the latest snapshot) and
the GraphService servicer."""

from __future__ import annotations

from linksyn.common.bus.base import Bus
from linksyn.common.config import SharedConfig
from linksyn.common.runtime.parts import ServiceParts
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.graph.build import warm_up
from linksyn.graph.config import GraphConfig
from linksyn.graph.servicer import GraphServicer
from linksyn.graph.stage import GraphStage
from linksyn.v1 import graph_pb2_grpc


def build(cfg: GraphConfig, shared: SharedConfig, bus: Bus) -> ServiceParts:
    """The graph service: consumes seed-kps, writes snapshots to graph.snapshot_url, serves GraphService.
    The bus is the consumer loop's; the stage never touches it."""
    warm_up()  # the compiled kernels, before the first batch (and before restoring a snapshot) rather than in it
    stage = GraphStage(cfg, shared.bus.topics, SnapshotStore(cfg.snapshot_url, keep=cfg.snapshot_keep))
    servicer = GraphServicer(
        stage, default_limit=cfg.query_limit, chunk_bytes=cfg.stream_chunk_bytes, max_text_chars=cfg.max_kp_chars
    )
    return ServiceParts(
        name="graph",
        stage=stage,
        servicers=[(graph_pb2_grpc.add_GraphServiceServicer_to_server, servicer)],
        service_names=["linksyn.v1.GraphService"],
    )
