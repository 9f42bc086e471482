"""Metrics of the graph service (prometheus_client default registry, labelled by `service`).

Ingest rate is `rate(linksyn_graph_seeds_ingested_total[1m])`; snapshot staleness is
`linksyn_graph_snapshot_age_seconds`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SEEDS_INGESTED = Counter(
    "linksyn_graph_seeds_ingested_total", "Annotated seeds added to the graph (replays not counted).", ["service"]
)
SEEDS_REPLAYED = Counter(
    "linksyn_graph_seeds_replayed_total",
    "Annotated seeds skipped because their id is already in the graph (redelivery after a restart).",
    ["service"],
)
SEEDS_REJECTED = Counter(
    "linksyn_graph_seeds_rejected_total", "Malformed AnnotatedSeed records (dead-lettered), by reason.",
    ["service", "reason"],
)
GRAPH_KPS = Gauge("linksyn_graph_kps", "Knowledge points (nodes) in the graph.", ["service"])
GRAPH_EDGES = Gauge("linksyn_graph_edges", "Co-occurrence edges in the graph.", ["service"])
GRAPH_SEEDS = Gauge("linksyn_graph_seeds", "Seeds in the graph.", ["service"])
SNAPSHOT_VERSION = Gauge("linksyn_graph_snapshot_version", "Version of the last durable snapshot.", ["service"])
SNAPSHOT_AGE = Gauge(
    "linksyn_graph_snapshot_age_seconds", "Seconds since the last durable snapshot was written.", ["service"]
)
SNAPSHOT_SECONDS = Histogram(
    "linksyn_graph_snapshot_seconds",
    "Time to build and durably write one snapshot.",
    ["service"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
SNAPSHOT_BYTES = Gauge("linksyn_graph_snapshot_bytes", "Size of the last snapshot's arrays.", ["service"])
