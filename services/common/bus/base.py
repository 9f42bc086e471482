"""The Bus interface: what every service needs from Kafka, and nothing more.

Two implementations share these semantics (tests/common/bus/test_conformance.py runs one suite on both):
- `KafkaBus` (kafka-python against any Kafka-protocol broker), for services running as processes;
- `InMemoryBus`, for `linksyn run` (all stages in one process) and tests.

Semantics, as Kafka's:
- a topic has a fixed number of partitions; a record with a key goes to partition `hash(key) % n`
  (murmur2, as Kafka's default partitioner), so records of one key keep their order;
- a consumer group shares a topic's partitions between its members; each partition is read by one member;
- `commit` stores, per partition, the offset of the *next* record to read (Kafka's convention);
- a member that leaves or dies without committing leaves its uncommitted records to be redelivered to the
  member that takes over its partitions (at-least-once);
- a new group with no committed offset starts at the earliest record (`auto_offset_reset="earliest"`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, order=True)
class TopicPartition:
    """One partition of one topic."""

    topic: str
    partition: int


@dataclass(frozen=True)
class Message:
    """A record as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    """The record's bytes; b"" for a null value (a tombstone produced by another client)."""
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        """The last value of header `name`, or None."""
        found = None
        for k, v in self.headers:
            if k == name:
                found = v
        return found


@dataclass(frozen=True)
class OutRecord:
    """A record to produce."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = field(default=())


RebalanceCallback = Callable[[set[TopicPartition]], None]


class Consumer(abc.ABC):
    """One member of a consumer group. Not thread-safe: use it from one thread, as kafka-python requires."""

    @abc.abstractmethod
    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Message]:
        """Records from the assigned, unpaused partitions, in offset order per partition; [] after timeout_s."""

    @abc.abstractmethod
    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Store, for each partition, the offset of the next record to read. Synchronous."""

    @abc.abstractmethod
    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop returning records of these partitions from poll (membership is kept)."""

    @abc.abstractmethod
    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        """Undo pause."""

    @abc.abstractmethod
    def assignment(self) -> set[TopicPartition]:
        """The partitions this member reads now."""

    @abc.abstractmethod
    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed next offset of `tp`, None if nothing was committed."""

    @abc.abstractmethod
    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset the next produced record of each partition will get (the log end)."""

    def lag(self) -> dict[TopicPartition, int]:
        """Records not yet committed by the group, per assigned partition."""
        tps = self.assignment()
        ends = self.end_offsets(tps)
        return {tp: max(0, ends[tp] - (self.committed(tp) or 0)) for tp in tps}

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the group without committing anything more; uncommitted records go to the next owner."""


class Bus(abc.ABC):
    """Producer side, topic admin and the consumer factory. Produce is thread-safe."""

    @abc.abstractmethod
    def ensure_topics(self, partitions: Mapping[str, int]) -> None:
        """Create the topics that do not exist with the given partition counts; existing ones are left alone."""

    @abc.abstractmethod
    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None:
        """Send one record (asynchronously; `flush` waits for every record sent so far to be stored)."""

    def produce_many(self, records: Iterable[OutRecord]) -> None:
        for r in records:
            self.produce(r.topic, r.value, key=r.key, headers=r.headers)

    @abc.abstractmethod
    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every record produced so far is stored; raise if one failed."""

    @abc.abstractmethod
    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        on_revoke: RebalanceCallback | None = None,
        on_assign: RebalanceCallback | None = None,
    ) -> Consumer:
        """Join `group` reading `topics`. `on_revoke` runs before partitions are taken away (commit there)."""

    @abc.abstractmethod
    def partitions_for(self, topic: str) -> int:
        """Number of partitions of an existing topic."""

    @abc.abstractmethod
    def group_lag(self, group: str, topic: str) -> dict[TopicPartition, int]:
        """Records of `topic` not yet committed by `group`, per partition, read without joining the group
        (a group that never committed counts from offset 0). What a producer uses to pace itself."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and release connections."""


def check_consumer_args(group: str, topics: Sequence[str]) -> None:
    """The argument errors every Bus.consumer raises alike."""
    if isinstance(topics, str):
        raise TypeError(f"topics must be a sequence of names, got the string {topics!r}")
    if not topics:
        raise ValueError("a consumer needs at least one topic")
    if not group:
        raise ValueError("group must not be empty")


def check_partition_counts(partitions: Mapping[str, int]) -> None:
    """The argument errors every Bus.ensure_topics raises alike."""
    for topic, n in partitions.items():
        if n < 1:
            raise ValueError(f"topic {topic!r}: partitions must be >= 1, got {n}")


def murmur2_partition(key: bytes, num_partitions: int) -> int:
    """Kafka's default partitioner (murmur2, positive), so both buses place keys identically."""
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % num_partitions
