"""In-order commits under out-of-order completion.

Records of one partition are handed out in offset order but may finish in any order (concurrent batches, retries).
Kafka stores one number per partition, "the next offset to read", so the only safe number to commit is the lowest
offset that is not finished yet: committing past an unfinished record would lose it if the process died.

Per partition the tracker keeps the in-flight offsets twice: a deque in the order they were added (increasing) and a
set for membership. Finishing an offset removes it from the set and pops finished offsets off the deque's head, so
every offset is pushed and popped once: amortised O(1) per record, whatever the completion order.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

from linksyn.common.bus.base import TopicPartition


class _PartitionOffsets:
    __slots__ = ("order", "pending", "next_offset")

    def __init__(self) -> None:
        self.order: deque[int] = deque()
        """Offsets added and not yet popped, increasing (finished ones linger until they reach the head)."""
        self.pending: set[int] = set()
        """Offsets added and not finished."""
        self.next_offset = -1
        """One past the last offset added (-1 before the first)."""

    def committable(self) -> int:
        return self.order[0] if self.order else self.next_offset


class OffsetTracker:
    """Per partition: which polled offsets are still being worked on, and how far a commit may go.

    Not thread-safe: one thread (the consumer loop's) owns it.
    """

    def __init__(self) -> None:
        self._parts: dict[TopicPartition, _PartitionOffsets] = {}
        self._generation: dict[TopicPartition, int] = {}
        self._in_flight = 0

    def add(self, tp: TopicPartition, offset: int) -> None:
        """Start tracking `offset` of `tp`. Offsets of a partition must be added in increasing order."""
        p = self._parts.get(tp)
        if p is None:
            p = self._parts[tp] = _PartitionOffsets()
        if offset < p.next_offset:
            raise ValueError(
                f"offset {offset} of {tp.topic}[{tp.partition}] added after offset {p.next_offset - 1}: "
                "offsets of a partition must be added in increasing order (forget the partition to restart it)"
            )
        p.order.append(offset)
        p.pending.add(offset)
        p.next_offset = offset + 1
        self._in_flight += 1

    def done(self, tp: TopicPartition, offset: int) -> None:
        """Mark `offset` of `tp` finished (its outputs produced, or dead-lettered)."""
        p = self._parts.get(tp)
        if p is None or offset not in p.pending:
            raise ValueError(f"offset {offset} of {tp.topic}[{tp.partition}] is not in flight")
        p.pending.remove(offset)
        self._in_flight -= 1
        order, pending = p.order, p.pending
        # Pop finished offsets off the head; each offset is popped once over its lifetime.
        while order and order[0] not in pending:
            order.popleft()

    def committable(self, partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Per partition, the offset to commit: the lowest unfinished offset, or one past the last added one
        when all are finished. Partitions that never had a record are absent."""
        if partitions is None:
            return {tp: p.committable() for tp, p in self._parts.items()}
        return {tp: self._parts[tp].committable() for tp in partitions if tp in self._parts}

    def forget(self, partitions: Iterable[TopicPartition]) -> int:
        """Drop partitions (revoked from this consumer); returns how many in-flight records were dropped.
        Their generation moves on, so completions of work started before can be recognised as stale."""
        dropped = 0
        for tp in partitions:
            p = self._parts.pop(tp, None)
            if p is not None:
                dropped += len(p.pending)
            self._generation[tp] = self._generation.get(tp, 0) + 1
        self._in_flight -= dropped
        return dropped

    def generation(self, tp: TopicPartition) -> int:
        """How many times `tp` was forgotten: work tagged with an older generation belongs to a lost assignment."""
        return self._generation.get(tp, 0)

    def in_flight(self, tp: TopicPartition | None = None) -> int:
        """Records added and not finished, of one partition or of all."""
        if tp is None:
            return self._in_flight
        p = self._parts.get(tp)
        return len(p.pending) if p else 0

    def partitions(self) -> set[TopicPartition]:
        """Partitions being tracked."""
        return set(self._parts)
