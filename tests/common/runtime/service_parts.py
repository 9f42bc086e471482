"""Every linksyn service's real ServiceParts, built by its own `app.build` over an in-memory bus (test helper)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from linksyn.common.bus import InMemoryBus
from linksyn.common.runtime.parts import ServiceParts
from linksyn.config import LinksynConfig
from linksyn.registry import SERVICES, build_service


def local_config(root: Path) -> LinksynConfig:
    """Defaults (embedded LLM, memory bus) with every store under `root`; the graph and the sink make their work
    durable (and so committable) within a second or two."""
    cfg = LinksynConfig()
    cfg.graph.snapshot_url = str(root / "graph")
    cfg.graph.snapshot_every_s = 1.0
    cfg.sink.flush_interval_s = 1.0
    cfg.sampler.snapshot_store = str(root / "graph")
    cfg.sink.output_dir = str(root / "dataset")
    cfg.trainer.out_dir = str(root / "trainer")
    return cfg


def build_every_service(root: Path) -> Iterator[dict[str, ServiceParts]]:
    """Yields name -> ServiceParts for every service (a fixture body); closes them afterwards."""
    cfg = local_config(root)
    built: dict[str, ServiceParts] = {}
    try:
        for name in SERVICES:
            built[name] = build_service(name, cfg, InMemoryBus())
        yield built
    finally:
        for parts in built.values():
            if parts.close is not None:
                parts.close()
