"""The service runtime: the consumer loop every service runs, its metrics, the gRPC server, Stats, and the host that
runs a service's parts (in `linksyn serve` and `linksyn run` alike).

Names are imported lazily, so domain code importing `linksyn.common.runtime.stage` does not load gRPC.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from linksyn.common.runtime.grpc_server import build_grpc_server, grpc_channel
    from linksyn.common.runtime.host import ServiceHost, consumer_group, run_service
    from linksyn.common.runtime.loop import ConsumerLoop, OutputsLostError
    from linksyn.common.runtime.metrics import start_metrics_server
    from linksyn.common.runtime.offsets import OffsetTracker
    from linksyn.common.runtime.parts import Background, ServiceParts
    from linksyn.common.runtime.stage import PermanentError, Result, Stage
    from linksyn.common.runtime.stats import RuntimeStats, stats_reply

_EXPORTS = {
    "Background": "parts",
    "ConsumerLoop": "loop",
    "OffsetTracker": "offsets",
    "OutputsLostError": "loop",
    "PermanentError": "stage",
    "Result": "stage",
    "RuntimeStats": "stats",
    "ServiceHost": "host",
    "ServiceParts": "parts",
    "Stage": "stage",
    "build_grpc_server": "grpc_server",
    "consumer_group": "host",
    "grpc_channel": "grpc_server",
    "run_service": "host",
    "start_metrics_server": "metrics",
    "stats_reply": "stats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
