"""The consumer loop: batching, concurrency with in-order commits, retries, dead letters, hooks, shutdown."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Callable, Mapping, Sequence

import pytest
from linksyn.common.bus import Bus, InMemoryBus, Message, OutRecord, TopicPartition
from linksyn.common.config import RuntimeConfig, TopicsConfig
from linksyn.common.runtime.loop import ConsumerLoop, OutputsLostError
from linksyn.common.runtime.stage import PermanentError, Result
from linksyn.v1 import records_pb2

from .conftest import EchoStage, RecordingBus, fast_runtime, read_topic, wait_for

pytestmark = pytest.mark.timeout(120)


def _topics(prefix: str = "t") -> tuple[str, str]:
    u = uuid.uuid4().hex[:8]
    return f"{prefix}-in-{u}", f"{prefix}-out-{u}"


def _dead_letters(bus: Bus, loop: ConsumerLoop, count: int) -> list[records_pb2.DeadLetter]:
    out = []
    for m in read_topic(bus, loop.topics.dead_letter, count):
        dl = records_pb2.DeadLetter()
        dl.ParseFromString(m.value)
        out.append(dl)
    return out


def test_every_record_is_processed_and_committed_to_the_log_end(start_loop: Callable[..., ConsumerLoop]) -> None:
    bus = RecordingBus(InMemoryBus())
    src, dst = _topics()
    bus.ensure_topics({src: 3, dst: 3})
    for i in range(200):
        bus.produce(src, b"v%d" % i, key=b"k%d" % i)
    loop = start_loop(bus, EchoStage(src, dst), fast_runtime(batch_size=16))
    wait_for(loop.drained, "the loop to drain")
    out = read_topic(bus, dst, 200)
    assert sorted(m.value for m in out) == sorted(b"v%d" % i for i in range(200))
    reader = bus.inner.consumer(f"ends-{uuid.uuid4().hex[:8]}", [src])
    ends = reader.end_offsets([TopicPartition(src, p) for p in range(3)])
    reader.close()
    assert bus.last_committed() == ends and sum(ends.values()) == 200
    stats = loop.stats()
    assert stats["records_in"] == 200 and stats["records_out"] == 200 and stats["dead_letters"] == 0
    assert stats["in_flight"] == 0 and stats["lag"] == 0


class GatedStage:
    """Each batch waits until the test opens its gate (batches are identified by their first offset)."""

    concurrent_batches = True

    def __init__(self, src: str, dst: str) -> None:
        self.name = f"gated-{uuid.uuid4().hex[:8]}"
        self.input_topics = [src]
        self.dst = dst
        self.gates: dict[int, threading.Event] = {}
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.finished: set[int] = set()

    def gate(self, first_offset: int) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(first_offset, threading.Event())

    def process(self, batch: Sequence[Message]) -> list[Result]:
        first = batch[0].offset
        with self.lock:
            self.started.append(first)
        assert self.gate(first).wait(60), f"gate {first} never opened"
        with self.lock:
            self.finished.update(m.offset for m in batch)
        return [Result.ok(OutRecord(self.dst, m.value)) for m in batch]


def test_commits_never_pass_an_unfinished_record_when_batches_finish_in_reverse(
    start_loop: Callable[..., ConsumerLoop],
) -> None:
    bus = RecordingBus(InMemoryBus())
    src, dst = _topics()
    bus.ensure_topics({src: 1, dst: 1})
    for i in range(16):
        bus.produce(src, b"%d" % i)
    stage = GatedStage(src, dst)
    tp = TopicPartition(src, 0)
    violations: list[str] = []

    def check(offsets: dict[TopicPartition, int]) -> None:
        with stage.lock:
            unfinished = [o for o in range(offsets[tp]) if o not in stage.finished]
        if unfinished:
            violations.append(f"committed {offsets[tp]} with {unfinished} unfinished")

    bus.on_commit = check
    loop = start_loop(bus, stage, fast_runtime(batch_size=4, workers=4, batch_wait_s=0.5))
    wait_for(lambda: len(stage.started) == 4, "4 batches running at once")
    assert sorted(stage.started) == [0, 4, 8, 12]
    for first in (12, 8, 4):
        stage.gate(first).set()
        wait_for(lambda: loop.stats()["batches"] == (16 - first) // 4, f"batch {first} to complete")
        time.sleep(0.15)  # a few commit intervals: nothing may be committed while offset 0 is unfinished
        assert bus.last_committed().get(tp, 0) == 0
    stage.gate(0).set()
    wait_for(lambda: bus.last_committed().get(tp) == 16, "the commit to reach 16")
    assert violations == []
    assert len(read_topic(bus, dst, 16)) == 16


class FlakyStage:
    """Fails records whose value is in `fail_times` that many times (as Result.failed), then succeeds."""

    def __init__(self, src: str, dst: str, fail_times: Mapping[bytes, int], permanent: bool = False) -> None:
        self.name = f"flaky-{uuid.uuid4().hex[:8]}"
        self.input_topics = [src]
        self.dst = dst
        self.fail_times = dict(fail_times)
        self.permanent = permanent
        self.calls: Counter[bytes] = Counter()
        self.batch_sizes: dict[bytes, list[int]] = {}
        self.lock = threading.Lock()

    def process(self, batch: Sequence[Message]) -> list[Result]:
        out = []
        for m in batch:
            with self.lock:
                self.calls[m.value] += 1
                self.batch_sizes.setdefault(m.value, []).append(len(batch))
                n = self.calls[m.value]
            if n <= self.fail_times.get(m.value, 0):
                out.append(Result.failed(f"cannot handle {m.value!r} (call {n})", permanent=self.permanent))
            else:
                out.append(Result.ok(OutRecord(self.dst, m.value, key=m.key)))
        return out


def test_a_failing_record_is_retried_alone_until_it_succeeds(start_loop: Callable[..., ConsumerLoop]) -> None:
    bus = InMemoryBus()
    src, dst = _topics()
    bus.ensure_topics({src: 1, dst: 1})
    values = [b"a", b"b", b"flaky", b"c"]
    for v in values:
        bus.produce(src, v)
    stage = FlakyStage(src, dst, {b"flaky": 2})
    loop = start_loop(bus, stage, fast_runtime(max_attempts=3, batch_size=4, batch_wait_s=0.2))
    wait_for(loop.drained, "the loop to drain")
    assert stage.calls == Counter({b"a": 1, b"b": 1, b"c": 1, b"flaky": 3})
    assert stage.batch_sizes[b"flaky"] == [4, 1, 1]  # first in the batch, then alone
    assert sorted(m.value for m in read_topic(bus, dst, 4)) == sorted(values)
    stats = loop.stats()
    assert stats["retries"] == 2 and stats["records_failed"] == 2 and stats["dead_letters"] == 0


@pytest.mark.parametrize("bus_kind", ["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def test_a_poison_record_is_dead_lettered_after_max_attempts_and_the_partition_keeps_flowing(
    bus_kind: str, make_bus: Callable[..., Bus], unique_topic: Callable[[str], str],
    start_loop: Callable[..., ConsumerLoop],
) -> None:
    bus = make_bus(bus_kind)
    src, dst, dead = unique_topic("poison-in"), unique_topic("poison-out"), unique_topic("poison-dl")
    bus.ensure_topics({src: 1, dst: 1, dead: 1})
    values = [b"ok-%d" % i for i in range(5)] + [b"poison"] + [b"ok-%d" % i for i in range(5, 10)]
    for v in values:
        bus.produce(src, v, key=b"key-" + v)
    bus.flush()
    stage = FlakyStage(src, dst, {b"poison": 1_000_000})
    loop = start_loop(bus, stage, fast_runtime(max_attempts=3), topics=TopicsConfig(dead_letter=dead))
    out = read_topic(bus, dst, 10)
    assert sorted(m.value for m in out) == sorted(v for v in values if v != b"poison")
    [dl] = _dead_letters(bus, loop, 1)
    assert (dl.topic, dl.partition, dl.offset) == (src, 0, 5)
    assert dl.payload == b"poison" and dl.key == b"key-poison"
    assert dl.attempts == 3 and "cannot handle b'poison' (call 3)" in dl.error
    assert dl.service == stage.name and dl.failed_unix_ms > 0
    assert stage.calls[b"poison"] == 3
    wait_for(loop.drained, "the group to commit past the poison record")
    assert loop.stats()["dead_letters"] == 1


def test_a_permanent_failure_is_dead_lettered_at_once(start_loop: Callable[..., ConsumerLoop]) -> None:
    bus = InMemoryBus()
    src, dst = _topics()
    bus.ensure_topics({src: 1, dst: 1})
    bus.produce(src, b"bad")
    bus.produce(src, b"good")
    stage = FlakyStage(src, dst, {b"bad": 1_000_000}, permanent=True)
    loop = start_loop(bus, stage, fast_runtime(max_attempts=5))
    [dl] = _dead_letters(bus, loop, 1)
    assert dl.attempts == 1 and dl.payload == b"bad"
    wait_for(loop.drained, "drain")
    assert stage.calls[b"bad"] == 1 and loop.stats()["retries"] == 0


class RaisingStage:
    """Raises for any batch holding a value in `bad` (PermanentError if `permanent`)."""

    def __init__(self, src: str, dst: str, bad: set[bytes], permanent: bool) -> None:
        self.name = f"raising-{uuid.uuid4().hex[:8]}"
        self.input_topics = [src]
        self.dst = dst
        self.bad = bad
        self.permanent = permanent
        self.calls: Counter[bytes] = Counter()
        self.lock = threading.Lock()

    def process(self, batch: Sequence[Message]) -> list[Result]:
        with self.lock:
            self.calls.update(m.value for m in batch)
        if any(m.value in self.bad for m in batch):
            raise (PermanentError if self.permanent else RuntimeError)("batch has a bad record")
        return [Result.ok(OutRecord(self.dst, m.value)) for m in batch]


@pytest.mark.parametrize("permanent", [False, True])
def test_an_exception_splits_the_batch_so_only_the_bad_record_fails(
    permanent: bool, start_loop: Callable[..., ConsumerLoop]
) -> None:
    bus = InMemoryBus()
    src, dst = _topics()
    bus.ensure_topics({src: 1, dst: 1})
    for v in (b"a", b"bad", b"b", b"c"):
        bus.produce(src, v)
    stage = RaisingStage(src, dst, {b"bad"}, permanent)
    loop = start_loop(bus, stage, fast_runtime(max_attempts=3, batch_size=4, batch_wait_s=0.2))
    wait_for(loop.drained, "drain")
    [dl] = _dead_letters(bus, loop, 1)
    assert dl.payload == b"bad"
    assert dl.error == ("PermanentError" if permanent else "RuntimeError") + ": batch has a bad record"
    assert dl.attempts == (1 if permanent else 3)
    # Good records: once in the failed batch, once alone; the bad one: once in the batch, then its attempts alone.
    assert stage.calls == Counter({b"a": 2, b"b": 2, b"c": 2, b"bad": 1 + dl.attempts})
    assert sorted(m.value for m in read_topic(bus, dst, 3)) == [b"a", b"b", b"c"]


def test_an_oversized_record_is_dead_lettered_unread(start_loop: Callable[..., ConsumerLoop]) -> None:
    bus = InMemoryBus()
    src, dst = _topics()
    bus.ensure_topics({src: 1, dst: 1})
    big = b"x" * 5000
    bus.produce(src, b"small")
    bus.produce(src, big, key=b"big")
    bus.produce(src, b"after")
    stage = FlakyStage(src, dst, {})
    loop = start_loop(bus, stage, fast_runtime(max_record_bytes=4096))
    [dl] = _dead_letters(bus, loop, 1)
    assert big.startswith(dl.payload) and len(dl.payload) > 3000 and dl.ByteSize() + len(b"big") <= 4096
    assert dl.key == b"big" and dl.offset == 1 and dl.attempts == 0
    assert "5000 bytes exceeds runtime.max_record_bytes=4096" in dl.error
    wait_for(loop.drained, "drain")
    assert big not in stage.calls and stage.calls == Counter({b"small": 1, b"after": 1})


def test_stop_commits_finished_work_and_hands_unfinished_work_to_the_next_member(
    start_loop: Callable[..., ConsumerLoop],
) -> None:
    bus = RecordingBus(InMemoryBus())
    src, dst = _topics()
    bus.ensure_topics({src: 1, dst: 1})
    for i in range(12):
        bus.produce(src, b"%d" % i)
    stage = GatedStage(src, dst)
    stage.gate(0).set()  # the first batch (offsets 0-3) finishes; the others hang past the shutdown timeout
    group = f"g-{uuid.uuid4().hex[:8]}"
    loop = start_loop(
        bus, stage, fast_runtime(batch_size=4, batch_wait_s=0.01, shutdown_timeout_s=0.3), group=group
    )
    wait_for(lambda: len(stage.started) == 3 and loop.stats()["batches"] == 1, "batch 0 done, two stuck")
    try:
        assert loop.stop(timeout=30)
        assert loop.error is None
        tp = TopicPartition(src, 0)
        assert bus.last_committed()[tp] == 4
        assert loop.stats()["handed_back"] == 8
        # A new member of the group starts at the first unfinished record.
        c = bus.inner.consumer(group, [src])
        got: list[Message] = []
        wait_for(lambda: got.extend(c.poll(timeout_s=0.1)) or len(got) >= 8, "the handed-back records")
        assert [m.offset for m in got] == list(range(4, 12))
        c.close()
    finally:
        for g in (4, 8):
            stage.gate(g).set()


def test_stop_lets_a_running_batch_finish_and_commits_it(start_loop: Callable[..., ConsumerLoop]) -> None:
    bus = RecordingBus(InMemoryBus())
    src, dst = _topics()
    bus.ensure_topics({src: 1, dst: 1})
    for i in range(4):
        bus.produce(src, b"%d" % i)
    stage = GatedStage(src, dst)
    loop = start_loop(bus, stage, fast_runtime(batch_size=4, shutdown_timeout_s=30))
    wait_for(lambda: len(stage.started) == 1, "the batch to start")
    stopper = threading.Thread(target=loop.stop)
    stopper.start()
    time.sleep(0.2)
    assert not loop.finished()  # waiting for the batch
    stage.gate(0).set()
    stopper.join(30)
    assert loop.finished() and loop.error is None
    assert bus.last_committed() == {TopicPartition(src, 0): 4}
    assert len(read_topic(bus, dst, 4)) == 4


def test_max_in_flight_bounds_what_is_polled(start_loop: Callable[..., ConsumerLoop]) -> None:
    bus = InMemoryBus()
    src, dst = _topics()
    bus.ensure_topics({src: 4, dst: 1})
    for i in range(200):
        bus.produce(src, b"%d" % i, key=b"%d" % i)
    stage = GatedStage(src, dst)
    loop = start_loop(bus, stage, fast_runtime(max_in_flight=8, batch_size=4, workers=4))
    wait_for(lambda: len(stage.started) == 2, "two batches of 4 running")
    time.sleep(0.3)
    assert loop.stats()["records_in"] == 8 and loop.stats()["in_flight"] == 8
    for g in list(stage.gates) + list(range(0, 200)):
        stage.gate(g).set()
    wait_for(loop.drained, "drain")
    assert loop.stats()["records_in"] == 200


class SerialStage:
    """Records how many process() calls overlap."""

    concurrent_batches = False

    def __init__(self, src: str) -> None:
        self.name = f"serial-{uuid.uuid4().hex[:8]}"
        self.input_topics = [src]
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def process(self, batch: Sequence[Message]) -> list[Result]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.005)
        with self.lock:
            self.running -= 1
        return [Result.ok() for _ in batch]


def test_a_stage_without_concurrent_batches_runs_one_batch_at_a_time(
    start_loop: Callable[..., ConsumerLoop],
) -> None:
    bus = InMemoryBus()
    src, _ = _topics()
    bus.ensure_topics({src: 2})
    for i in range(80):
        bus.produce(src, b"%d" % i)
    stage = SerialStage(src)
    loop = start_loop(bus, stage, fast_runtime(workers=8, batch_size=2))
    assert loop.workers == 1
    wait_for(loop.drained, "drain")
    assert stage.most == 1 and loop.stats()["batches"] == 40


class CheckpointStage:
    """Output durable only at checkpoints: commits may go as far as the last checkpoint."""

    def __init__(self, src: str) -> None:
        self.name = f"ckpt-{uuid.uuid4().hex[:8]}"
        self.input_topics = [src]
        self.seen: dict[TopicPartition, int] = {}
        self.checkpoint: dict[TopicPartition, int] = {}
        self.ticks = 0
        self.closed = 0
        self.lock = threading.Lock()

    def process(self, batch: Sequence[Message]) -> list[Result]:
        with self.lock:
            for m in batch:
                self.seen[m.tp] = max(self.seen.get(m.tp, 0), m.offset + 1)
        return [Result.ok() for _ in batch]

    def committable(self, done: Mapping[TopicPartition, int]) -> Mapping[TopicPartition, int]:
        return {tp: off for tp, off in done.items() if tp in self.checkpoint} | {
            tp: min(off, self.checkpoint[tp]) for tp, off in done.items() if tp in self.checkpoint
        }

    def tick(self) -> None:
        self.ticks += 1

    def close(self) -> None:
        self.closed += 1
        with self.lock:
            self.checkpoint = dict(self.seen)


def test_stage_hooks_hold_commits_back_to_the_checkpoint_tick_and_close(
    start_loop: Callable[..., ConsumerLoop],
) -> None:
    bus = RecordingBus(InMemoryBus())
    src, _ = _topics()
    bus.ensure_topics({src: 1})
    for i in range(10):
        bus.produce(src, b"%d" % i)
    stage = CheckpointStage(src)
    loop = start_loop(bus, stage)
    wait_for(lambda: loop.stats()["batches"] >= 3 and loop.idle(), "all records processed")
    wait_for(lambda: stage.ticks >= 1, "a tick")
    assert bus.commits == []  # no checkpoint yet
    assert not loop.drained(timeout=2)
    assert loop.stop(timeout=30)
    assert stage.closed == 1
    assert bus.last_committed() == {TopicPartition(src, 0): 10}  # close() checkpointed; the final commit follows


@pytest.mark.parametrize("bus_kind", ["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def test_revoked_partitions_are_committed_before_they_move(
    bus_kind: str, make_bus: Callable[..., Bus], start_loop: Callable[..., ConsumerLoop]
) -> None:
    bus = RecordingBus(make_bus(bus_kind))
    src, dst = _topics()
    bus.ensure_topics({src: 2, dst: 1})
    for i in range(40):
        bus.produce(src, b"%d" % i, key=b"%d" % i)
    bus.flush()
    group = f"g-{uuid.uuid4().hex[:8]}"
    # Periodic commits effectively off: only the revoke can commit.
    first = EchoStage(src, dst)
    a = start_loop(bus, first, fast_runtime(commit_interval_s=3600), group=group)
    wait_for(lambda: a.stats()["records_out"] == 40 and a.idle(), "the first member to process everything")
    assert bus.commits == []
    second = EchoStage(src, dst)
    b = start_loop(bus, second, fast_runtime(commit_interval_s=3600), group=group)
    wait_for(lambda: len(bus.commits) >= 1, "the commit on revoke")
    assert sum(bus.last_committed().values()) == 40
    wait_for(lambda: b.drained(timeout=1), "the second member to own its share")
    assert b.stats()["records_in"] == 0  # nothing was redelivered
    assert len(read_topic(bus, dst, 40)) == 40


class PartitionStateStage(EchoStage):
    """Holds commits back on every partition (state it never checkpoints) and records the rebalance hooks."""

    def __init__(self, input_topic: str, out_topic: str) -> None:
        super().__init__(input_topic, out_topic)
        self.events: list[tuple[str, frozenset[TopicPartition]]] = []

    def committable(self, done: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in done}

    def on_assign(self, partitions: set[TopicPartition]) -> None:
        self.events.append(("assign", frozenset(partitions)))

    def on_revoke(self, partitions: set[TopicPartition]) -> None:
        self.events.append(("revoke", frozenset(partitions)))


@pytest.mark.parametrize("bus_kind", ["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def test_a_stage_hears_of_assignments_and_revocations(
    bus_kind: str, make_bus: Callable[..., Bus], start_loop: Callable[..., ConsumerLoop]
) -> None:
    bus = RecordingBus(make_bus(bus_kind))
    src, dst = _topics()
    bus.ensure_topics({src: 2, dst: 1})
    for i in range(8):
        bus.produce(src, b"%d" % i, key=b"%d" % i)
    bus.flush()
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = PartitionStateStage(src, dst)
    a = start_loop(bus, first, group=group)
    both = frozenset({TopicPartition(src, 0), TopicPartition(src, 1)})
    wait_for(lambda: ("assign", both) in first.events, "the first member to get both partitions")
    second = PartitionStateStage(src, dst)
    start_loop(bus, second, group=group)
    wait_for(lambda: any(e == "assign" and len(p) == 1 for e, p in second.events), "the second member's share")
    wait_for(lambda: any(e == "assign" and len(p) == 1 for e, p in first.events), "the first member's new share")
    revokes = [p for e, p in first.events if e == "revoke"]
    assert revokes and revokes[0] == both  # eager rebalancing: everything is revoked, then reassigned
    assert first.events.index(("revoke", both)) > first.events.index(("assign", both))
    # The stage held every commit back, so the revoke committed nothing past 0 either.
    assert all(off == 0 for c in bus.commits for off in c.values())
    assert a.error is None


def test_drained_waits_for_new_records(start_loop: Callable[..., ConsumerLoop]) -> None:
    bus = InMemoryBus()
    src, dst = _topics()
    bus.ensure_topics({src: 1, dst: 1})
    stage = FlakyStage(src, dst, {})
    loop = start_loop(bus, stage)
    wait_for(loop.drained, "an empty topic to count as drained")
    bus.produce(src, b"late")
    wait_for(lambda: not loop.drained(timeout=1) or stage.calls[b"late"] == 1, "the record to be seen")
    wait_for(loop.drained, "drain")
    assert stage.calls[b"late"] == 1


def test_a_stage_returning_the_wrong_number_of_results_fails_the_batch(
    start_loop: Callable[..., ConsumerLoop],
) -> None:
    class Short:
        name = f"short-{uuid.uuid4().hex[:8]}"
        input_topics: list[str] = []

        def process(self, batch: Sequence[Message]) -> list[Result]:
            return []

    bus = InMemoryBus()
    src, _ = _topics()
    bus.ensure_topics({src: 1})
    bus.produce(src, b"x")
    stage = Short()
    stage.input_topics = [src]
    loop = start_loop(bus, stage, fast_runtime(max_attempts=2))
    [dl] = _dead_letters(bus, loop, 1)
    assert "returned 0 results for a batch of 1 records" in dl.error and dl.attempts == 2


def test_a_stage_without_input_topics_is_refused() -> None:
    class Nothing:
        name = "nothing"
        input_topics: list[str] = []

        def process(self, batch: Sequence[Message]) -> list[Result]:
            return []

    with pytest.raises(ValueError, match="'nothing' has no input topics"):
        ConsumerLoop(InMemoryBus(), Nothing(), RuntimeConfig(), TopicsConfig(), "g")


def test_a_failed_flush_stops_the_loop_without_committing(start_loop: Callable[..., ConsumerLoop]) -> None:
    class FailingFlush(RecordingBus):
        def flush(self, timeout_s: float | None = None) -> None:
            raise RuntimeError("broker rejected 3 records")

    bus = FailingFlush(InMemoryBus())
    src, dst = _topics()
    bus.ensure_topics({src: 1, dst: 1})
    for i in range(10):
        bus.produce(src, b"%d" % i)
    group = f"g-{uuid.uuid4().hex[:8]}"
    loop = start_loop(bus, EchoStage(src, dst), group=group)
    assert loop.wait_finished(30)
    assert isinstance(loop.error, OutputsLostError)
    assert "broker rejected 3 records" in str(loop.error)
    assert bus.commits == []
    c = bus.inner.consumer(group, [src])  # everything is redelivered to the next member
    got: list[Message] = []
    wait_for(lambda: got.extend(c.poll(timeout_s=0.1)) or len(got) >= 10, "the redelivered records")
    assert [m.offset for m in got] == list(range(10))
    c.close()
