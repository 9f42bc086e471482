"""The service runtime: the consumer loop every service runs, its metrics, the gRPC server and the process runner.

Names are imported lazily, so domain code importing `linksyn.common.runtime.stage` does not load gRPC.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from linksyn.common.runtime.grpc_server import build_grpc_server, grpc_channel
    from linksyn.common.runtime.loop import ConsumerLoop, OutputsLostError, backoff_delay
    from linksyn.common.runtime.metrics import start_metrics_server
    from linksyn.common.runtime.offsets import OffsetTracker
    from linksyn.common.runtime.parts import Background, ServiceParts
    from linksyn.common.runtime.service import RuntimeStats, consumer_group, run_service, stats_reply
    from linksyn.common.runtime.stage import PermanentError, Result, Stage

_EXPORTS = {
    "Background": "parts",
    "ConsumerLoop": "loop",
    "OffsetTracker": "offsets",
    "OutputsLostError": "loop",
    "PermanentError": "stage",
    "Result": "stage",
    "RuntimeStats": "service",
    "ServiceParts": "parts",
    "Stage": "stage",
    "backoff_delay": "loop",
    "build_grpc_server": "grpc_server",
    "consumer_group": "service",
    "grpc_channel": "grpc_server",
    "run_service": "service",
    "start_metrics_server": "metrics",
    "stats_reply": "service",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
