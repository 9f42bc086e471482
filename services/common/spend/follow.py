"""The reading side: the usage topic, from its beginning, into a UsageLedger.

Each follower reads with a consumer group of its own (new per process, never committing), so it sees every report of
the topic whatever other readers do, and rebuilds the ledger after a restart. On a compacted topic (the chart creates
it so) that is the latest report per key, i.e. a few records per replica and model ever started.
"""

from __future__ import annotations

import logging
import uuid

from google.protobuf.message import DecodeError
from linksyn.common.bus.base import Bus, Consumer
from linksyn.common.spend.ledger import UsageLedger
from linksyn.v1 import records_pb2

log = logging.getLogger(__name__)

MAX_ROUNDS = 20
"""Most polls of 500 records one `poll()` makes (what arrived since the last call, in a catching-up reader)."""


class UsageFollower:
    """Keeps `ledger` up to date with the usage topic; `poll()` takes what has arrived without waiting. Its consumer
    belongs to the thread that first polls (one thread only)."""

    def __init__(self, bus: Bus, topic: str, run: str, reader: str) -> None:
        self.bus = bus
        self.topic = topic
        self.group = f"linksyn.{reader}.usage.{uuid.uuid4().hex[:12]}"
        self.ledger = UsageLedger(run)
        self._consumer: Consumer | None = None
        self.malformed = 0

    def poll(self, timeout_s: float = 0.0) -> UsageLedger:
        if self._consumer is None:
            self._consumer = self.bus.consumer(self.group, [self.topic])
        for i in range(MAX_ROUNDS):
            msgs = self._consumer.poll(max_records=500, timeout_s=timeout_s if i == 0 else 0.0)
            for m in msgs:
                r = records_pb2.UsageReport()
                try:
                    r.ParseFromString(m.value)
                except DecodeError:
                    self.malformed += 1
                    log.warning("usage topic %s: record at %d[%d] is not a UsageReport; skipped",
                                self.topic, m.partition, m.offset)
                    continue
                self.ledger.add(r)
            if len(msgs) < 500:
                break
        return self.ledger

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
