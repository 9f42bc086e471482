"""The consumer-loop metrics every service exports, the /metrics HTTP endpoint, and their flattened form for the
`Stats` RPC.

Metrics are defined once here on prometheus_client's default registry and labelled by `service`, so several
services in one process (`linksyn run`) keep separate series.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

RECORDS_IN = Counter(
    "linksyn_consumer_records_in_total", "Records polled from an input topic.", ["service", "topic"]
)
RECORDS_OUT = Counter(
    "linksyn_consumer_records_out_total", "Records produced to an output topic by a stage.", ["service", "topic"]
)
RECORDS_FAILED = Counter(
    "linksyn_consumer_records_failed_total",
    "Failed processing attempts of input records (each retry that fails counts again).",
    ["service", "topic"],
)
DEAD_LETTERS = Counter(
    "linksyn_consumer_dead_letters_total",
    "Input records sent to the dead-letter topic, by the topic they came from.",
    ["service", "topic"],
)
PROCESSING_SECONDS = Histogram(
    "linksyn_consumer_processing_seconds",
    "Time a stage took to process one batch.",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
IN_FLIGHT = Gauge(
    "linksyn_consumer_in_flight", "Input records polled and not yet finished (processing, waiting, retrying).", ["service"]
)
LAG_RECORDS = Gauge(
    "linksyn_consumer_lag_records",
    "Records of an input topic not yet committed by the consumer group (over the partitions this member reads).",
    ["service", "topic"],
)


class ConsumerMetrics:
    """The metric children of one service, with per-topic children cached (label lookups cost a lock and a dict)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._children: dict[tuple[int, str], Any] = {}
        self.processing_seconds = PROCESSING_SECONDS.labels(service=service)
        self.in_flight = IN_FLIGHT.labels(service=service)

    def _child(self, metric: Any, topic: str) -> Any:
        key = (id(metric), topic)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(service=self.service, topic=topic)
        return c

    def records_in(self, topic: str) -> Counter:
        return self._child(RECORDS_IN, topic)

    def records_out(self, topic: str) -> Counter:
        return self._child(RECORDS_OUT, topic)

    def records_failed(self, topic: str) -> Counter:
        return self._child(RECORDS_FAILED, topic)

    def dead_letters(self, topic: str) -> Counter:
        return self._child(DEAD_LETTERS, topic)

    def lag(self, topic: str) -> Gauge:
        return self._child(LAG_RECORDS, topic)


def start_metrics_server(host: str, port: int) -> tuple[Any, int]:
    """Serve the default registry on http://host:port/metrics from a daemon thread; port 0 picks a free one.
    Returns (server, bound port); `server.shutdown()` stops it."""
    server, _thread = start_http_server(port, addr=host)
    return server, int(server.server_port)


def stop_metrics_server(server: Any) -> None:
    """Stop a server from start_metrics_server and release its port."""
    # shutdown() waits for serve_forever to return; run it aside so a stuck request cannot hang the caller.
    t = threading.Thread(target=server.shutdown, daemon=True)
    t.start()
    t.join(timeout=5)
    server.server_close()


def flattened_metrics(service: str, prefix: str = "linksyn_") -> dict[str, float]:
    """Every sample of the default registry labelled `service=<service>`, as {"name{label=value,...}": value}.

    The `service` label and the `prefix` are dropped from the key; histograms contribute their _count and _sum
    (buckets are for Prometheus). This is what the `Stats` RPC returns as `counters`.
    """
    out: dict[str, float] = {}
    for metric in REGISTRY.collect():
        if not metric.name.startswith(prefix):
            continue
        for s in metric.samples:
            if s.labels.get("service") != service:
                continue
            if s.name.endswith("_bucket") or s.name.endswith("_created"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "service")
            name = s.name[len(prefix):]
            out[f"{name}{{{labels}}}" if labels else name] = float(s.value)
    return out
