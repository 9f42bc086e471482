"""The service registry that `linksyn serve`, `linksyn status` and `linksyn run` share."""

from __future__ import annotations

import pytest

from linksyn import registry
from linksyn.common.bus import InMemoryBus
from linksyn.config import LinksynConfig


def test_the_real_registry_names_every_service_app_in_pipeline_order():
    assert list(registry.SERVICES) == ["extractor", "graph", "sampler", "synth", "sink", "trainer"]
    assert all(e.app == f"linksyn.{name}.app" for name, e in registry.SERVICES.items())
    assert registry.SERVICES["sink"].grpc_service == "linksyn.v1.SinkService"
    assert registry.SERVICES["sink"].stub == "SinkServiceStub"
    assert "trainer" not in registry.DEFAULT_STAGES
    assert registry.available() == dict.fromkeys(registry.SERVICES, True)


def test_check_names_orders_and_refuses_unknown_names():
    assert registry.check_names(["sink", " extractor ", ""]) == ["extractor", "sink"]
    with pytest.raises(registry.UnknownService, match="unknown service\\(s\\) 'nope'; known: extractor"):
        registry.check_names(["nope"])


def test_build_service_hands_a_service_its_own_section(tmp_path):
    """The sampler gets its section with the one cross-section default filled in (the graph's store), and the
    sections shared by every service; it never reads another service's section."""
    cfg = LinksynConfig()
    cfg.graph.snapshot_url = str(tmp_path / "graph")
    cfg.sampler.lag_target = 7
    assert cfg.section("sampler").snapshot_store == str(tmp_path / "graph")
    assert cfg.sampler.snapshot_store == ""  # the configuration itself is untouched
    cfg.sampler.graph_target = "graph:50051"
    assert cfg.section("sampler").snapshot_store == ""  # streaming from the graph service: no store needed
    assert cfg.section("synth") is cfg.synth and cfg.section("annotate") is None
    cfg.sink.output_dir = str(tmp_path / "dataset")
    parts = registry.build_service("sink", cfg, InMemoryBus())
    try:
        assert parts.name == "sink" and parts.stage.input_topics == [cfg.bus.topics.synth_qa]
    finally:
        parts.close()
