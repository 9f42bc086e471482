"""Helpers for the runtime tests: small stages, a bus that records commits, fast runtime settings."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import pytest
from linksyn.common.bus.base import (
    Bus,
    Consumer,
    Headers,
    Message,
    OutRecord,
    RebalanceCallback,
    TopicPartition,
)
from linksyn.common.config import RetryConfig, RuntimeConfig, TopicsConfig
from linksyn.common.runtime.loop import ConsumerLoop
from linksyn.common.runtime.stage import Result

WAIT_S = 60.0


def fast_runtime(**overrides: Any) -> RuntimeConfig:
    """Runtime settings with short waits, so tests run in well under a second on the memory bus."""
    base: dict[str, Any] = dict(
        batch_size=4,
        batch_wait_s=0.01,
        commit_interval_s=0.05,
        shutdown_timeout_s=5.0,
        max_in_flight=64,
        workers=4,
    )
    retry = RetryConfig(backoff_initial_s=0.01, backoff_max_s=0.05, max_attempts=overrides.pop("max_attempts", 3))
    return RuntimeConfig(**(base | {"retry": retry} | overrides))


def wait_for(pred: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


def read_topic(bus: Bus, topic: str, count: int, timeout_s: float = WAIT_S) -> list[Message]:
    """Every record of `topic` (read by a fresh group) once `count` have arrived; fails on timeout."""
    c = bus.consumer(f"reader-{uuid.uuid4().hex[:8]}", [topic])
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout_s} s reading {topic}: {len(got)} of {count} records")
            got.extend(c.poll(max_records=500, timeout_s=0.2))
        # Anything beyond `count` that is already there (a duplicate would show up here).
        got.extend(c.poll(max_records=500, timeout_s=0.3))
    finally:
        c.close()
    return got


class EchoStage:
    """Copies each input value to `out_topic`, keyed by the input key."""

    def __init__(self, input_topic: str, out_topic: str, name: str | None = None) -> None:
        self.name = name or f"echo-{uuid.uuid4().hex[:8]}"
        self.input_topics = [input_topic]
        self.out_topic = out_topic

    def process(self, batch: Sequence[Message]) -> list[Result]:
        return [Result.ok(OutRecord(self.out_topic, m.value, key=m.key)) for m in batch]


class _RecordingConsumer(Consumer):
    def __init__(self, inner: Consumer, bus: "RecordingBus") -> None:
        self._inner = inner
        self._bus = bus

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Message]:
        return self._inner.poll(max_records=max_records, timeout_s=timeout_s)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self._bus.on_commit is not None:
            self._bus.on_commit(dict(offsets))
        self._inner.commit(offsets)
        self._bus.commits.append(dict(offsets))

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self._inner.pause(partitions)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._inner.resume(partitions)

    def assignment(self) -> set[TopicPartition]:
        return self._inner.assignment()

    def committed(self, tp: TopicPartition) -> int | None:
        return self._inner.committed(tp)

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return self._inner.end_offsets(partitions)

    def close(self) -> None:
        self._inner.close()


class RecordingBus(Bus):
    """Delegates to a real bus and records every commit made through its consumers (`on_commit` sees each
    commit before it is made)."""

    def __init__(self, inner: Bus) -> None:
        self.inner = inner
        self.commits: list[dict[TopicPartition, int]] = []
        self.on_commit: Callable[[dict[TopicPartition, int]], None] | None = None
        self.flushes = 0

    def ensure_topics(self, partitions: Mapping[str, int]) -> None:
        self.inner.ensure_topics(partitions)

    def produce(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = (), partition: int | None = None
    ) -> None:
        self.inner.produce(topic, value, key=key, headers=headers, partition=partition)

    def produce_many(self, records: Iterable[OutRecord]) -> None:
        self.inner.produce_many(records)

    def flush(self, timeout_s: float | None = None) -> None:
        self.flushes += 1
        self.inner.flush(timeout_s)

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        on_revoke: RebalanceCallback | None = None,
        on_assign: RebalanceCallback | None = None,
    ) -> Consumer:
        return _RecordingConsumer(self.inner.consumer(group, topics, on_revoke=on_revoke, on_assign=on_assign), self)

    def partitions_for(self, topic: str) -> int:
        return self.inner.partitions_for(topic)

    def group_lag(self, group: str, topic: str) -> dict[TopicPartition, int]:
        return self.inner.group_lag(group, topic)

    def close(self) -> None:
        self.inner.close()

    def last_committed(self) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        for c in self.commits:
            out.update(c)
        return out


@pytest.fixture
def start_loop() -> Iterator[Callable[..., ConsumerLoop]]:
    """`start_loop(bus, stage, cfg=None, group=None, topics=None)` -> a started ConsumerLoop, stopped after the
    test."""
    loops: list[ConsumerLoop] = []

    def factory(
        bus: Bus,
        stage: Any,
        cfg: RuntimeConfig | None = None,
        group: str | None = None,
        topics: TopicsConfig | None = None,
    ) -> ConsumerLoop:
        loop = ConsumerLoop(
            bus,
            stage,
            cfg or fast_runtime(),
            topics or TopicsConfig(dead_letter=f"dl-{uuid.uuid4().hex[:8]}"),
            group or f"g-{uuid.uuid4().hex[:8]}",
        )
        loops.append(loop.start())
        return loop

    yield factory
    for loop in loops:
        loop.stop(timeout=30)
