"""Records a service makes outside its consumer loop (the sampler's paths, the trainer's probe reports) go to the bus
through a `Publisher`: domain code is handed its `publish`, never the bus."""

from __future__ import annotations

import collections
from typing import Sequence

from linksyn.common.bus.base import Bus, OutRecord
from prometheus_client import Counter

PUBLISHED = Counter(
    "linksyn_published_records_total",
    "Records a service produced outside its consumer loop (sampler paths, probe reports), by topic.",
    ["service", "topic"],
)


class Publisher:
    """Produces records and waits until the bus has stored them (BusError if it could not: the caller retries)."""

    def __init__(self, bus: Bus, service: str) -> None:
        self.bus = bus
        self.service = service

    def publish(self, records: Sequence[OutRecord]) -> None:
        self.bus.produce_many(records)
        self.bus.flush()
        for topic, n in collections.Counter(r.topic for r in records).items():
            PUBLISHED.labels(service=self.service, topic=topic).inc(n)
