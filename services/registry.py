"""The services linksyn is made of, in pipeline order: one place that `linksyn serve`, `linksyn status` and the
embedded pipeline (`linksyn run`) all read.

Each service's wiring is the module `linksyn.<name>.app`, whose `build(cfg, shared, bus)` gets the service's own
config section (`LinksynConfig.section(name)`), the shared sections, and the bus, and returns its ServiceParts. A
service plugs in by existing: it is imported by name, and one whose module is not in this build is reported as
such, never imitated.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from linksyn.common.bus.base import Bus
    from linksyn.common.runtime.parts import ServiceParts
    from linksyn.config import LinksynConfig


@dataclass(frozen=True)
class ServiceEntry:
    """One service: its name (config section, consumer group suffix, metrics label) and its gRPC API."""

    name: str
    grpc_service: str
    """Full gRPC service name, e.g. "linksyn.v1.GraphService"."""
    proto: str
    """The module of its API under linksyn.v1 (`<proto>_pb2_grpc`)."""
    app_module: str = ""
    """The module whose `build(cfg, shared, bus)` wires the service; empty: `linksyn.<name>.app`."""

    @property
    def app(self) -> str:
        return self.app_module or f"linksyn.{self.name}.app"

    @property
    def stub(self) -> str:
        """The generated client stub class of its API."""
        return self.grpc_service.rsplit(".", 1)[1] + "Stub"


SERVICES: dict[str, ServiceEntry] = {
    e.name: e
    for e in (
        ServiceEntry("extractor", "linksyn.v1.ExtractorService", "extractor"),
        ServiceEntry("graph", "linksyn.v1.GraphService", "graph"),
        ServiceEntry("sampler", "linksyn.v1.SamplerService", "sampler"),
        ServiceEntry("synth", "linksyn.v1.SynthService", "synth"),
        ServiceEntry("sink", "linksyn.v1.SinkService", "sink"),
        ServiceEntry("trainer", "linksyn.v1.TrainerService", "trainer"),
    )
}
"""Every service, in pipeline order."""

DEFAULT_STAGES: tuple[str, ...] = ("extractor", "graph", "sampler", "synth", "sink")
"""What `linksyn run` runs unless told otherwise: the trainer (continual pre-training) is opt-in."""


class StageUnavailable(Exception):
    """The service's app module is not part of this build."""


class UnknownService(ValueError):
    """A name that is not one of SERVICES (the message lists the known ones)."""


def check_names(names: Iterable[str]) -> list[str]:
    """`names` (stripped, blanks dropped) in pipeline order; UnknownService naming any that is not a service."""
    chosen = [n.strip() for n in names if n.strip()]
    unknown = [n for n in chosen if n not in SERVICES]
    if unknown:
        raise UnknownService(f"unknown service(s) {', '.join(map(repr, unknown))}; known: {', '.join(SERVICES)}")
    return [n for n in SERVICES if n in chosen]


def import_app(name: str) -> Any:
    """The app module of service `name`; StageUnavailable if that module (or its package) does not exist.

    Any other import failure (a module the app imports is missing or broken) is a real error and propagates.
    """
    check_names([name])
    module = SERVICES[name].app
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        parts = module.split(".")
        missing_self = {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
        if e.name in missing_self:
            raise StageUnavailable(f"{module} is not in this build") from None
        raise


def available() -> dict[str, bool]:
    """Service name -> whether its app module exists (without importing it)."""
    out = {}
    for name, entry in SERVICES.items():
        try:
            out[name] = find_spec(entry.app) is not None
        except ModuleNotFoundError:
            out[name] = False
    return out


def build_service(name: str, cfg: "LinksynConfig", bus: "Bus") -> "ServiceParts":
    """Import service `name` and build it from `cfg` on `bus`: its app's build(its section, cfg, bus)."""
    return import_app(name).build(cfg.section(name), cfg, bus)
