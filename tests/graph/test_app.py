"""Wiring: the graph service built from its config: the stage on graph.snapshot_url, GraphService, metrics."""

from __future__ import annotations

from linksyn.common.bus import InMemoryBus
from linksyn.common.bus.base import Message
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.config import LinksynConfig
from linksyn.graph.servicer import GraphServicer
from linksyn.registry import build_service
from prometheus_client import REGISTRY

from tests.graph.graph_fixtures import HAND_SEEDS, annotated


def test_build_wires_the_configured_store_and_servicer(tmp_path):
    cfg = LinksynConfig()
    cfg.graph.snapshot_url = str(tmp_path / "out" / "graph")
    parts = build_service("graph", cfg, InMemoryBus())
    assert parts.name == "graph" and parts.service_names == ["linksyn.v1.GraphService"]
    assert parts.stage.input_topics == [cfg.bus.topics.seed_kps] and parts.stage.concurrent_batches is False
    (add, servicer), = parts.servicers
    assert isinstance(servicer, GraphServicer) and servicer.source is parts.stage

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"service": "graph"}) or 0.0

    before = sample("linksyn_graph_seeds_ingested_total")
    msgs = [Message(cfg.bus.topics.seed_kps, 0, i, None, annotated(*s).SerializeToString()) for i, s in enumerate(HAND_SEEDS)]
    parts.stage.process(msgs)
    parts.stage.process(msgs[:2])  # replayed: not counted as ingested
    parts.stage.close()  # what `linksyn run` does at the end: the final snapshot lands in the configured place
    assert sample("linksyn_graph_seeds_ingested_total") - before == len(HAND_SEEDS)
    assert sample("linksyn_graph_seeds") == len(HAND_SEEDS) and sample("linksyn_graph_edges") == 5
    assert sample("linksyn_graph_snapshot_version") == 1 and sample("linksyn_graph_snapshot_seconds_count") >= 1
    assert 0 <= sample("linksyn_graph_snapshot_age_seconds") < 60
    assert SnapshotStore(tmp_path / "out" / "graph").latest().n_seeds == len(HAND_SEEDS)
