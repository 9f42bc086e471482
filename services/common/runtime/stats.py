"""The `Stats` RPC every linksyn service answers: uptime, version, its metrics flattened, and its own details.

Every servicer gets it the same way, from `RuntimeStats`; a service only says what its details are.
"""

from __future__ import annotations

import json
import time
from importlib import metadata
from typing import Any, Mapping

from linksyn.common.runtime.metrics import flattened_metrics
from linksyn.v1 import common_pb2

_started_at: dict[str, float] = {}
_IMPORTED_AT = time.monotonic()


def mark_started(service: str) -> None:
    """Record when `service` started (the uptime its Stats report)."""
    _started_at[service] = time.monotonic()


def linksyn_version() -> str:
    try:
        return metadata.version("linksyn")
    except metadata.PackageNotFoundError:
        return "unknown"


def stats_reply(service: str, details: Mapping[str, Any] | None = None) -> common_pb2.StatsReply:
    """The Stats answer of `service`: its metrics (the consumer counters and any metric labelled with it),
    flattened, plus service-specific `details` as JSON."""
    return common_pb2.StatsReply(
        service=service,
        version=linksyn_version(),
        uptime_s=time.monotonic() - _started_at.get(service, _IMPORTED_AT),
        counters=flattened_metrics(service),
        details_json=json.dumps(dict(details or {}), sort_keys=True, default=str),
    )


class RuntimeStats:
    """Mixin giving a servicer the `Stats` RPC. List it before the generated base
    (`class GraphServicer(RuntimeStats, graph_pb2_grpc.GraphServiceServicer)`, whose Stats is UNIMPLEMENTED), set
    `stats_service` (the service name its metrics are labelled with) and override `stats_details()` to add the
    service's own figures."""

    stats_service: str = ""

    def stats_details(self) -> Mapping[str, Any]:
        return {}

    def Stats(self, request: common_pb2.StatsRequest, context: Any) -> common_pb2.StatsReply:  # noqa: N802 (gRPC name)
        if not self.stats_service:
            raise RuntimeError(f"{type(self).__name__}.stats_service is not set")
        return stats_reply(self.stats_service, self.stats_details())
