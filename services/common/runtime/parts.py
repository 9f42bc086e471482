"""What a service's wiring (`linksyn.<service>.app.build`) hands to the ServiceHost that runs it
(linksyn.common.runtime.host), in both places a service runs:
- `linksyn serve NAME`: one OS process on the Kafka bus, with its gRPC server and /metrics endpoint (run_service);
- `linksyn run`: every service in one process over the in-memory bus, without endpoints (linksyn.pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from linksyn.common.runtime.stage import Stage


class Background(Protocol):
    """A long-running producer loop (e.g. the sampler emitting paths just in time)."""

    def run(self, stop: Any) -> None:
        """Work until `stop` (a threading.Event) is set; must return promptly after it is."""
        ...


@dataclass
class ServiceParts:
    """A built service: its consumer stage, its gRPC servicers and any background loops."""

    name: str
    """Service name ("extractor", "graph", ...)."""
    stage: Stage | None = None
    """The consumer stage, or None for a service that consumes nothing."""
    servicers: list[tuple[Callable[[Any, Any], None], Any]] = field(default_factory=list)
    """(add_XServicer_to_server, servicer) pairs for the gRPC server; the health service is added for you."""
    service_names: list[str] = field(default_factory=list)
    """Full gRPC service names (e.g. 'linksyn.v1.GraphService') for health and reflection."""
    background: list[Background] = field(default_factory=list)
    """Loops run on their own threads beside the consumer loop."""
    close: Callable[[], None] | None = None
    """Called once at shutdown after everything stopped (release models, flush files)."""
    token_required: str | None = None
    """Why this service's gRPC API must not be served without server.grpc_token (None: it may be); the host
    refuses to start its endpoints without one and says this."""
