"""Metrics of the sink stage (prometheus_client default registry, labelled by `service`)."""

from __future__ import annotations

from prometheus_client import Counter

SINK_RECORDS = Counter(
    "linksyn_sink_records_total", "SynthQA records seen by the sink, by outcome (kept, dropped, replay, rekeyed).",
    ["service", "outcome"],
)
SINK_DROPPED = Counter(
    "linksyn_sink_dropped_total", "Records the sink dropped, by reason (duplicate, near_duplicate, contaminated, "
    "malformed).", ["service", "reason"],
)
SINK_SHARDS = Counter("linksyn_sink_shards_written_total", "Dataset shards written durably.", ["service"])
SINK_RECORDS_WRITTEN = Counter(
    "linksyn_sink_records_written_total", "Records written in durable dataset shards.", ["service"]
)
SINK_REKEYED = Counter(
    "linksyn_sink_rekeyed_total", "Records that arrived keyed otherwise than by their question and were published "
    "again under it (to the partition that decides that question).", ["service"],
)
SINK_RESTORE_SECONDS = Counter(
    "linksyn_sink_restore_seconds_total", "Seconds spent loading partitions' state (index catch-up, window refill).",
    ["service"],
)
