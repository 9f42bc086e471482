"""`InMemoryBus`: Kafka's semantics inside one process, for `linksyn run` and tests.

What it keeps from Kafka (see base.py): fixed partitions per topic, murmur2 key partitioning, consumer groups whose
members share partitions, committed next offsets, redelivery of uncommitted records to whoever owns a partition
next, pause/resume, log-end offsets. Rebalances follow Kafka's *eager* protocol, as kafka-python does: when the
group's membership or topics change, every member revokes all its partitions in its next poll (`on_revoke`, where it
may still commit), and only when every live member has done so does each take its new share, starting from the
group's committed offsets (`on_assign`). A member that owns partitions and is not polling therefore holds a
rebalance up, as in Kafka. `close` runs `on_revoke` first, as kafka-python 3 and the Java client do;
`simulate_crash` leaves with no callback at all, as a killed process would. A topic first named by produce or
consumer is created with `default_partitions` (a broker's auto-create), and topics must have legal Kafka names.

Differences from Kafka, on purpose: a member that leaves or dies gives its partitions up at once (no session
timeout); records are never deleted (no retention); produce is synchronous, so `flush` has nothing to wait for;
callbacks run in the polling thread (KafkaBus runs them on kafka-python's IO thread).

Speed: one lock per bus guards all state, held only to append or slice; each partition is a Python list of
`Message` objects shared by every group (messages are immutable). Keys are hashed outside the lock, with a faster
murmur2 (and numpy for `produce_many`).
"""

from __future__ import annotations

import itertools
import re
import struct
import threading
import time
from collections import defaultdict
from typing import Iterable, Mapping, Sequence

import numpy as np

from linksyn.common.bus.base import (
    check_consumer_args,
    check_partition_counts,
    Bus,
    Consumer,
    Headers,
    Message,
    OutRecord,
    RebalanceCallback,
    TopicPartition,
)
from linksyn.common.bus.errors import BusClosedError, CommitFailedError, UnknownTopicError

_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_M = 0x5BD1E995
_U32 = 0xFFFFFFFF
_WORD_UNPACKERS: dict[int, object] = {}
_HASH_CACHE: dict[bytes, int] = {}
_HASH_CACHE_MAX = 1 << 16


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash, equal to kafka-python's `murmur2` and about 3x faster (words unpacked at once; only
    the low 32 bits of each step matter, so one mask per word is enough)."""
    n = len(data)
    h = 0x9747B28C ^ n
    unpack = _WORD_UNPACKERS.get(n >> 2)
    if unpack is None:
        unpack = _WORD_UNPACKERS[n >> 2] = struct.Struct("<%dI" % (n >> 2)).unpack_from
    for k in unpack(data):  # type: ignore[operator]
        k = (k * _M) & _U32
        h = ((h * _M) ^ ((k ^ (k >> 24)) * _M)) & _U32
    extra = n & 3
    if extra:
        tail = n & ~3
        if extra >= 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _U32
    h ^= h >> 13
    h = (h * _M) & _U32
    return h ^ (h >> 15)


_M_NP = np.uint32(_M)


def murmur2_many(keys: Sequence[bytes]) -> np.ndarray:
    """murmur2 of many keys at once (uint32 array): numpy over the keys of each length, ~0.2 us a key."""
    out = np.empty(len(keys), dtype=np.uint32)
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        by_length[len(k)].append(i)
    for n, idx in by_length.items():
        rows = np.frombuffer(b"".join([keys[i] for i in idx]), dtype=np.uint8).reshape(len(idx), n)
        h = np.full(len(idx), (0x9747B28C ^ n) & _U32, dtype=np.uint32)
        w = n >> 2
        if w:
            words = np.ascontiguousarray(rows[:, : 4 * w]).view("<u4")
            for j in range(w):  # uint32 arithmetic wraps, as the hash wants
                k = words[:, j] * _M_NP
                k ^= k >> np.uint32(24)
                k *= _M_NP
                h *= _M_NP
                h ^= k
        extra, tail = n & 3, 4 * w
        if extra >= 3:
            h ^= rows[:, tail + 2].astype(np.uint32) << np.uint32(16)
        if extra >= 2:
            h ^= rows[:, tail + 1].astype(np.uint32) << np.uint32(8)
        if extra >= 1:
            h ^= rows[:, tail].astype(np.uint32)
            h *= _M_NP
        h ^= h >> np.uint32(13)
        h *= _M_NP
        h ^= h >> np.uint32(15)
        out[idx] = h
    return out


def key_partition(key: bytes, num_partitions: int) -> int:
    """`base.murmur2_partition`, with a bounded cache: one id is often produced to several topics in a row."""
    h = _HASH_CACHE.get(key)
    if h is None:
        if len(_HASH_CACHE) >= _HASH_CACHE_MAX:
            _HASH_CACHE.clear()
        h = _HASH_CACHE[key] = murmur2(key) & 0x7FFFFFFF
    return h % num_partitions


_new_message = object.__new__


def build_message(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes, headers: tuple, ts: int
) -> Message:
    # Message is a frozen dataclass; filling __dict__ directly skips its __init__ (object.__setattr__ per field),
    # which halves the cost of the hottest line of produce. The result is an ordinary, equal Message.
    m = _new_message(Message)
    m.__dict__.update(
        topic=topic, partition=partition, offset=offset, key=key, value=value, headers=headers, timestamp_ms=ts
    )
    return m


def _check_value(value: object) -> bytes:
    if type(value) is bytes:
        return value  # type: ignore[return-value]
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"record values must be bytes, got {type(value).__name__}")


def _check_headers(headers: Headers) -> tuple[tuple[str, bytes], ...]:
    if not headers:
        return ()
    out = tuple((k, v) for k, v in headers)
    for k, v in out:
        if not isinstance(k, str) or not isinstance(v, (bytes, bytearray)):
            raise TypeError(f"headers must be (str, bytes) pairs, got ({type(k).__name__}, {type(v).__name__})")
    return out


class _Group:
    """A consumer group: members in join order, the partitions each owns now, and the committed offsets."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[int, InMemoryConsumer] = {}
        self.generation = 0
        self.owner: dict[TopicPartition, InMemoryConsumer] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.targets: dict[int, list[TopicPartition]] | None = None

    def topics(self) -> set[str]:
        return {t for m in self.members.values() for t in m._topics}

    def plan(self, topics: Mapping[str, list[list[Message]]]) -> dict[int, list[TopicPartition]]:
        """Range assignment per topic (Kafka's default): partitions split into contiguous runs over the members."""
        plan: dict[int, list[TopicPartition]] = {mid: [] for mid in self.members}
        for topic in sorted(self.topics()):
            subs = [mid for mid, m in self.members.items() if topic in m._topics]
            n = len(topics.get(topic, ()))
            if not subs or not n:
                continue
            per, extra = divmod(n, len(subs))
            start = 0
            for i, mid in enumerate(subs):
                count = per + (1 if i < extra else 0)
                plan[mid].extend(TopicPartition(topic, p) for p in range(start, start + count))
                start += count
        return plan


class InMemoryBus(Bus):
    """All topics and groups of one process. Thread-safe; each consumer is used from one thread.

    `default_partitions` is what a topic gets when it is first named by produce or consumer without
    ensure_topics (a Kafka broker's `num.partitions`, 1 by default).
    """

    def __init__(self, default_partitions: int = 1) -> None:
        if default_partitions < 1:
            raise ValueError(f"default_partitions must be >= 1, got {default_partitions}")
        self._default_partitions = default_partitions
        self._lock = threading.Lock()
        # One condition for "records arrived" and "the group changed": a poll rechecks both when woken.
        self._changed = threading.Condition(self._lock)
        self._waiting = 0  # polls blocked on _changed (guarded by _lock)
        self._topics: dict[str, list[list[Message]]] = {}
        self._groups: dict[str, _Group] = {}
        self._consumers: list[InMemoryConsumer] = []
        self._round_robin = itertools.count()
        self._member_ids = itertools.count()
        self._closed = False

    # -- admin ----------------------------------------------------------------------------------------------------

    def ensure_topics(self, partitions: Mapping[str, int]) -> None:
        check_partition_counts(partitions)
        with self._lock:
            self._check_open()
            for topic, n in partitions.items():
                if topic not in self._topics:
                    self._create_locked(topic, n)

    def partitions_for(self, topic: str) -> int:
        parts = self._topics.get(topic)
        if parts is None:
            raise UnknownTopicError(f"topic {topic!r} does not exist (known: {sorted(self._topics)})")
        return len(parts)

    def group_lag(self, group: str, topic: str) -> dict[TopicPartition, int]:
        with self._lock:
            self._check_open()
            parts = self._topics.get(topic)
            if parts is None:
                raise UnknownTopicError(f"topic {topic!r} does not exist (known: {sorted(self._topics)})")
            g = self._groups.get(group)
            committed = g.committed if g is not None else {}
            return {TopicPartition(topic, p): max(0, len(log) - committed.get(TopicPartition(topic, p), 0))
                    for p, log in enumerate(parts)}

    def _create_locked(self, topic: str, n: int) -> list[list[Message]]:
        if not _LEGAL_TOPIC.fullmatch(topic) or topic in (".", ".."):
            raise ValueError(
                f"topic name {topic!r} is illegal: Kafka allows 1-249 ASCII letters, digits, '.', '_' and '-'"
            )
        parts: list[list[Message]] = [[] for _ in range(n)]
        self._topics[topic] = parts
        for g in self._groups.values():
            if topic in g.topics():
                self._rebalance_locked(g)
        return parts

    # -- produce --------------------------------------------------------------------------------------------------

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None:
        if type(value) is not bytes:
            value = _check_value(value)
        hdrs = _check_headers(headers) if headers else ()
        parts = self._topics.get(topic)
        if parts is None:
            with self._lock:
                self._check_open()
                parts = self._topics.get(topic) or self._create_locked(topic, self._default_partitions)
        # A topic's partition count never changes, so the partition is chosen outside the lock.
        n = len(parts)
        if partition is None:
            if key is None:
                partition = next(self._round_robin) % n
            else:
                h = _HASH_CACHE.get(key)
                partition = (h if h is not None else key_partition(key, n)) % n
        elif not 0 <= partition < n:
            raise ValueError(f"partition {partition} out of range for topic {topic!r} with {n} partitions")
        m = _new_message(Message)
        with self._lock:
            if self._closed:
                raise BusClosedError("produce on a closed InMemoryBus")
            log = parts[partition]
            m.__dict__.update(
                topic=topic, partition=partition, offset=len(log), key=key, value=value, headers=hdrs,
                timestamp_ms=time.time_ns() // 1_000_000,
            )
            log.append(m)
            if self._waiting:  # Condition.notify_all costs ~0.5 us even with nobody waiting
                self._changed.notify_all()

    def produce_many(self, records: Iterable[OutRecord]) -> None:
        """Like produce for each record, with the keys hashed together (numpy) and one lock acquisition."""
        ts = time.time_ns() // 1_000_000
        batch = [
            (r.topic, _check_value(r.value), r.key, _check_headers(r.headers) if r.headers else ()) for r in records
        ]
        if not batch:
            return
        keyed = [i for i, rec in enumerate(batch) if rec[2] is not None]
        hashes = murmur2_many([batch[i][2] for i in keyed]) if len(keyed) >= 16 else None
        with self._lock:
            if self._closed:
                raise BusClosedError("produce on a closed InMemoryBus")
            topics = self._topics
            for topic, *_ in batch:
                if topic not in topics:
                    self._create_locked(topic, self._default_partitions)
            partition_of: dict[int, int] = {}
            if hashes is not None:
                for i, h in zip(keyed, (hashes & 0x7FFFFFFF).tolist()):
                    partition_of[i] = h % len(topics[batch[i][0]])
            for i, (topic, value, key, hdrs) in enumerate(batch):
                parts = topics[topic]
                partition = partition_of.get(i)
                if partition is None:
                    n = len(parts)
                    partition = key_partition(key, n) if key is not None else next(self._round_robin) % n
                log = parts[partition]
                log.append(build_message(topic, partition, len(log), key, value, hdrs, ts))
            if self._waiting:
                self._changed.notify_all()

    def flush(self, timeout_s: float | None = None) -> None:
        """Nothing to wait for: produce stores the record before it returns."""

    # -- consumers ------------------------------------------------------------------------------------------------

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        on_revoke: RebalanceCallback | None = None,
        on_assign: RebalanceCallback | None = None,
    ) -> "InMemoryConsumer":
        check_consumer_args(group, topics)
        with self._lock:
            self._check_open()
            for t in topics:
                if t not in self._topics:
                    self._create_locked(t, self._default_partitions)
            g = self._groups.get(group)
            if g is None:
                g = self._groups[group] = _Group(group)
            c = InMemoryConsumer(self, g, next(self._member_ids), tuple(topics), on_revoke, on_assign)
            g.members[c._id] = c
            self._consumers.append(c)
            self._rebalance_locked(g)
            c._gen_seen = g.generation  # it owns nothing, so it has nothing to revoke
        return c

    def _rebalance_locked(self, g: _Group) -> None:
        g.generation += 1
        g.targets = None
        self._changed.notify_all()

    def _remove_member_locked(self, c: "InMemoryConsumer") -> None:
        g = c._group
        if g.members.pop(c._id, None) is None:
            return
        for tp in c._positions:
            if g.owner.get(tp) is c:
                del g.owner[tp]
        c._positions.clear()
        self._rebalance_locked(g)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for c in self._consumers:
                c._closed = True
                self._remove_member_locked(c)
            self._consumers.clear()
            self._changed.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("InMemoryBus is closed")


class InMemoryConsumer(Consumer):
    """One member of a group of an InMemoryBus."""

    def __init__(
        self,
        bus: InMemoryBus,
        group: _Group,
        member_id: int,
        topics: tuple[str, ...],
        on_revoke: RebalanceCallback | None,
        on_assign: RebalanceCallback | None,
    ) -> None:
        self._bus = bus
        self._group = group
        self._id = member_id
        self._topics = topics
        self._on_revoke = on_revoke
        self._on_assign = on_assign
        self._gen_seen = -1  # the last generation whose revocation this member has done
        self._gen_assigned = -1  # the last generation whose assignment this member has taken
        self._positions: dict[TopicPartition, int] = {}  # owned partitions -> next offset to hand out
        self._order: list[TopicPartition] = []  # owned partitions in fetch order (rotated for fairness)
        self._paused: set[TopicPartition] = set()
        self._closed = False

    # -- poll -----------------------------------------------------------------------------------------------------

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Message]:
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        deadline = time.monotonic() + max(0.0, timeout_s)
        bus = self._bus
        while True:
            with bus._lock:
                self._check_open()
                step = self._rebalance_step_locked()
                if step is None:
                    out = self._fetch_locked(max_records)
                    if out:
                        return out
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return []
                    bus._waiting += 1
                    try:
                        bus._changed.wait(remaining)
                    finally:
                        bus._waiting -= 1
                    continue
            # Callbacks run outside the lock: they commit, produce, or wait on other threads.
            kind, tps, gen = step
            if kind == "revoke":
                try:
                    if self._on_revoke is not None:
                        self._on_revoke(set(tps))
                finally:
                    with bus._lock:
                        self._finish_revoke_locked(tps, gen)
            elif self._on_assign is not None:
                self._on_assign(set(tps))

    def _rebalance_step_locked(self) -> tuple[str, list[TopicPartition], int] | None:
        """The rebalance work this member must do before it may fetch, or None when the group is stable."""
        g = self._group
        if self._gen_seen != g.generation:
            if self._positions:
                return ("revoke", list(self._positions), g.generation)
            self._gen_seen = g.generation
            self._bus._changed.notify_all()  # members waiting on the barrier recheck it
        if self._gen_assigned == g.generation:
            return None
        # Eager protocol barrier: nobody takes partitions until every member that owns some has revoked them for
        # this generation (a member owning nothing has nothing to give back, polling or not).
        if any(m._positions and m._gen_seen != g.generation for m in g.members.values()):
            return None
        if g.targets is None:
            g.targets = g.plan(self._bus._topics)
        mine = g.targets.get(self._id, [])
        for tp in mine:
            g.owner[tp] = self
            self._positions[tp] = g.committed.get(tp, 0)
        self._order = list(mine)
        self._gen_assigned = g.generation
        return ("assign", list(mine), g.generation)

    def _finish_revoke_locked(self, tps: list[TopicPartition], gen: int) -> None:
        g = self._group
        for tp in tps:
            if g.owner.get(tp) is self:
                del g.owner[tp]
            self._positions.pop(tp, None)
            self._paused.discard(tp)
        self._order = [tp for tp in self._order if tp in self._positions]
        self._gen_seen = gen
        self._bus._changed.notify_all()

    def _fetch_locked(self, max_records: int) -> list[Message]:
        if self._gen_assigned != self._group.generation or not self._order:
            return []
        topics = self._bus._topics
        positions = self._positions
        paused = self._paused
        out: list[Message] = []
        need = max_records
        order = self._order
        for tp in order:
            if tp in paused:
                continue
            log = topics[tp.topic][tp.partition]
            pos = positions[tp]
            if pos < len(log):
                batch = log[pos : pos + need]
                positions[tp] = pos + len(batch)
                out.extend(batch)
                need -= len(batch)
                if not need:
                    break
        if len(order) > 1:
            order.append(order.pop(0))  # next poll starts at the next partition, so none starves
        return out

    # -- offsets --------------------------------------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        with self._bus._lock:
            self._check_open()
            g = self._group
            for tp, off in offsets.items():
                if g.owner.get(tp) is not self:
                    raise CommitFailedError(
                        f"group {g.name!r}: cannot commit {tp.topic}[{tp.partition}]@{off}: the partition is not "
                        f"assigned to this member (a rebalance moved it; its records will be redelivered)"
                    )
                end = len(self._bus._topics[tp.topic][tp.partition])
                if not 0 <= off <= end:
                    raise CommitFailedError(
                        f"group {g.name!r}: offset {off} of {tp.topic}[{tp.partition}] is outside [0, {end}]"
                    )
            g.committed.update(offsets)

    def committed(self, tp: TopicPartition) -> int | None:
        with self._bus._lock:
            return self._group.committed.get(tp)

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        topics = self._bus._topics
        out = {}
        with self._bus._lock:
            for tp in partitions:
                parts = topics.get(tp.topic)
                if parts is None or not 0 <= tp.partition < len(parts):
                    raise UnknownTopicError(f"no partition {tp.topic}[{tp.partition}]")
                out[tp] = len(parts[tp.partition])
        return out

    # -- flow control and membership ------------------------------------------------------------------------------

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        with self._bus._lock:
            self._check_open()
            for tp in partitions:
                if tp not in self._positions:
                    raise ValueError(f"cannot pause {tp.topic}[{tp.partition}]: not assigned to this member")
                self._paused.add(tp)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        with self._bus._lock:
            self._check_open()
            self._paused.difference_update(partitions)
            self._bus._changed.notify_all()

    def paused(self) -> set[TopicPartition]:
        """The partitions paused now."""
        return set(self._paused)

    def assignment(self) -> set[TopicPartition]:
        with self._bus._lock:
            return set(self._positions)

    def close(self) -> None:
        """Leave the group. As Kafka clients do, `on_revoke` runs first with the owned partitions (commit there)."""
        with self._bus._lock:
            owned = set(self._positions) if not self._closed else set()
        if owned and self._on_revoke is not None:
            self._on_revoke(owned)
        self._leave()

    def _leave(self) -> None:
        with self._bus._lock:
            if self._closed:
                return
            self._closed = True
            self._bus._remove_member_locked(self)
            if self in self._bus._consumers:
                self._bus._consumers.remove(self)

    def simulate_crash(self) -> None:
        """Drop out of the group as a killed process would: no callbacks, no commits, nothing flushed.

        A process cannot share this bus's memory, so tests of "a member dies mid-work" use this instead of SIGKILL.
        Unlike Kafka there is no session timeout to wait for: the partitions move at the next rebalance.
        """
        self._leave()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError(f"consumer of group {self._group.name!r} is closed")
