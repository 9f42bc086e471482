"""One suite, both buses: InMemoryBus must behave as KafkaBus does against a real broker (Tansu).

Every test takes `bus_kind` ("memory", "kafka"). Consumers that must run side by side live in their own threads
(`Member`), because a consumer is used from one thread only and a Kafka group only forms while its members poll.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

import pytest

from linksyn.common.bus import Bus, CommitFailedError, Consumer, Message, TopicPartition, UnknownTopicError
from linksyn.common.bus.base import murmur2_partition

pytestmark = pytest.mark.timeout(180)

CONSUMER_PROC = Path(__file__).resolve().parent / "consumer_proc.py"
WAIT_S = 60.0  # longest wait for any expected event (Kafka groups form in ~3 s; a dead member expires in ~6 s)


def poll_until(consumer: Consumer, done: Callable[[list[Message]], bool], timeout_s: float = WAIT_S) -> list[Message]:
    """Poll one consumer (in this thread) until `done(records so far)`; fail after timeout_s."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while not done(got):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s with {len(got)} records: {summary(got)}")
        got.extend(consumer.poll(max_records=500, timeout_s=0.2))
    return got


def summary(records: list[Message]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for m in records:
        out[m.partition].append(m.offset)
    return dict(out)


def next_offsets(records: list[Message]) -> dict[TopicPartition, int]:
    out: dict[TopicPartition, int] = {}
    for m in records:
        out[m.tp] = max(out.get(m.tp, 0), m.offset + 1)
    return out


def wait_for(pred: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Member:
    """A group member polling in its own thread, recording what it received and its rebalance callbacks.

    `commit` decides what to commit after each non-empty poll (None: nothing). `on_revoke_commit` commits every
    record received before partitions are taken away. `events` is shared between members to check ordering.
    """

    def __init__(
        self,
        bus: Bus,
        group: str,
        topics: list[str],
        name: str,
        events: list[tuple[str, str, frozenset[TopicPartition]]] | None = None,
        commit: Callable[[list[Message]], dict[TopicPartition, int] | None] | None = None,
        on_revoke_commit: bool = False,
    ) -> None:
        self.bus, self.group, self.topics, self.name = bus, group, topics, name
        self.events = events if events is not None else []
        self.commit_policy = commit
        self.on_revoke_commit = on_revoke_commit
        self.received: list[Message] = []
        self.lock = threading.Lock()
        self.stop_how: str | None = None
        self.error: BaseException | None = None
        self.assignment: set[TopicPartition] = set()
        self.thread = threading.Thread(target=self._run, name=f"member-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        consumer: Consumer | None = None
        try:
            def on_revoke(tps: set[TopicPartition]) -> None:
                self.events.append(("revoke", self.name, frozenset(tps)))
                if self.on_revoke_commit and consumer is not None:
                    with self.lock:
                        done = {tp: off for tp, off in next_offsets(self.received).items() if tp in tps}
                    if done:
                        consumer.commit(done)

            def on_assign(tps: set[TopicPartition]) -> None:
                self.events.append(("assign", self.name, frozenset(tps)))

            consumer = self.bus.consumer(self.group, self.topics, on_revoke=on_revoke, on_assign=on_assign)
            while self.stop_how is None:
                batch = consumer.poll(max_records=200, timeout_s=0.1)
                self.assignment = consumer.assignment()
                if batch:
                    with self.lock:
                        self.received.extend(batch)
                    if self.commit_policy is not None:
                        offsets = self.commit_policy(batch)
                        if offsets:
                            try:
                                consumer.commit(offsets)
                            except CommitFailedError:
                                pass  # a rebalance moved the partitions; their records go to the new owner
            if self.stop_how == "crash":
                crash = getattr(consumer, "simulate_crash", None)
                if crash is None:
                    raise AssertionError("crash simulation is only for the memory bus; Kafka tests use SIGKILL")
                crash()
            else:
                consumer.close()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def snapshot(self) -> list[Message]:
        with self.lock:
            return list(self.received)

    def stop(self, how: str = "close") -> None:
        self.stop_how = how
        self.thread.join(timeout=WAIT_S)
        assert not self.thread.is_alive(), f"member {self.name} did not stop"
        if self.error is not None:
            raise self.error


def commit_all(batch: list[Message]) -> dict[TopicPartition, int]:
    return next_offsets(batch)


# -- produce / consume ------------------------------------------------------------------------------------------------


def test_order_per_partition_and_per_key(bus_kind, make_bus, unique_topic, unique_group):
    bus = make_bus(bus_kind)
    topic = unique_topic("order")
    bus.ensure_topics({topic: 3})
    assert bus.partitions_for(topic) == 3
    keys = [f"key-{i}".encode() for i in range(12)]
    sent = [(keys[i % len(keys)], f"{i}".encode()) for i in range(600)]
    for key, value in sent:
        bus.produce(topic, value, key=key)
    bus.flush()

    consumer = bus.consumer(unique_group("order"), [topic])
    got = poll_until(consumer, lambda r: len(r) >= len(sent))
    assert len(got) == len(sent)
    by_partition = summary(got)
    for p, offsets in by_partition.items():
        assert offsets == list(range(len(offsets))), f"partition {p} out of order"
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for m in got:
        assert m.topic == topic
        # Both buses place a key where Kafka's default partitioner (murmur2) does.
        assert m.partition == murmur2_partition(m.key, 3)
        by_key[m.key].append(int(m.value))
    for key in keys:
        expected = [int(v) for k, v in sent if k == key]
        assert by_key[key] == expected, f"records of {key!r} out of order"


def test_headers_and_null_keys_round_trip(bus_kind, make_bus, unique_topic, unique_group):
    bus = make_bus(bus_kind)
    topic = unique_topic("headers")
    bus.ensure_topics({topic: 1})
    headers = (("attempt", b"1"), ("attempt", b"2"), ("trace", b"\x00\xff binary"))
    bus.produce(topic, b"with headers", key=None, headers=headers)
    bus.produce(topic, b"", key=b"k")
    bus.flush()
    got = poll_until(bus.consumer(unique_group("headers"), [topic]), lambda r: len(r) >= 2)
    first, second = got
    assert (first.key, first.value, first.headers) == (None, b"with headers", headers)
    assert first.header("attempt") == b"2"  # the last value wins, as for repeated Kafka headers
    assert first.header("missing") is None
    assert (second.key, second.value, second.headers) == (b"k", b"", ())
    assert first.timestamp_ms > 0


def test_explicit_partition(bus_kind, make_bus, unique_topic, unique_group):
    bus = make_bus(bus_kind)
    topic = unique_topic("explicit")
    bus.ensure_topics({topic: 4})
    for p in (3, 0, 3):
        bus.produce(topic, f"p{p}".encode(), key=b"same-key", partition=p)
    bus.flush()
    got = poll_until(bus.consumer(unique_group("explicit"), [topic]), lambda r: len(r) >= 3)
    assert sorted((m.partition, m.offset, m.value) for m in got) == [(0, 0, b"p0"), (3, 0, b"p3"), (3, 1, b"p3")]


def test_ensure_topics_leaves_existing_topics_alone(bus_kind, make_bus, unique_topic):
    bus = make_bus(bus_kind)
    topic = unique_topic("admin")
    with pytest.raises(UnknownTopicError, match=topic):
        bus.partitions_for(topic)
    bus.ensure_topics({topic: 2})
    bus.ensure_topics({topic: 5})
    assert bus.partitions_for(topic) == 2


# -- offsets ----------------------------------------------------------------------------------------------------------


def test_commit_stores_the_next_offset_and_a_new_member_resumes_there(
    bus_kind, make_bus, unique_topic, unique_group
):
    bus = make_bus(bus_kind)
    topic, group = unique_topic("commit"), unique_group("commit")
    bus.ensure_topics({topic: 1})
    tp = TopicPartition(topic, 0)
    for i in range(10):
        bus.produce(topic, f"{i}".encode())
    bus.flush()

    first = bus.consumer(group, [topic])
    got = poll_until(first, lambda r: len(r) >= 10)
    assert first.committed(tp) is None
    assert first.lag() == {tp: 10}
    first.commit({tp: got[4].offset + 1})  # records 0-4 done: the next to read is 5
    assert first.committed(tp) == 5
    assert first.lag() == {tp: 5}
    assert first.end_offsets([tp]) == {tp: 10}
    first.close()

    second = bus.consumer(group, [topic])
    again = poll_until(second, lambda r: len(r) >= 5)
    assert [m.offset for m in again] == [5, 6, 7, 8, 9]
    assert [m.value for m in again] == [b"5", b"6", b"7", b"8", b"9"]
    second.commit({tp: 10})
    assert second.committed(tp) == 10
    assert second.lag() == {tp: 0}


def test_group_lag_is_read_without_joining_the_group(bus_kind, make_bus, unique_topic, unique_group):
    bus = make_bus(bus_kind)
    topic, group = unique_topic("lag"), unique_group("lag")
    bus.ensure_topics({topic: 2})
    for i in range(6):
        bus.produce(topic, f"{i}".encode(), partition=i % 2)
    bus.flush()
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    assert bus.group_lag(group, topic) == {p0: 3, p1: 3}  # a group that never committed counts from 0
    member = bus.consumer(group, [topic])
    poll_until(member, lambda r: len(r) >= 6)
    member.commit({p0: 2, p1: 3})
    assert bus.group_lag(group, topic) == {p0: 1, p1: 0}
    assert bus.group_lag(unique_group("other"), topic) == {p0: 3, p1: 3}


def test_a_second_group_reads_from_earliest_independently(bus_kind, make_bus, unique_topic, unique_group):
    bus = make_bus(bus_kind)
    topic = unique_topic("groups")
    bus.ensure_topics({topic: 2})
    for i in range(20):
        bus.produce(topic, f"{i}".encode(), key=f"{i}".encode())
    bus.flush()

    a = bus.consumer(unique_group("a"), [topic])
    got_a = poll_until(a, lambda r: len(r) >= 20)
    a.commit(next_offsets(got_a))
    b = bus.consumer(unique_group("b"), [topic])
    got_b = poll_until(b, lambda r: len(r) >= 20)
    assert sorted(m.value for m in got_a) == sorted(m.value for m in got_b)
    assert all(b.committed(tp) is None for tp in b.assignment())
    assert sum(b.lag().values()) == 20
    assert sum(a.lag().values()) == 0


def test_pause_and_resume(bus_kind, make_bus, unique_topic, unique_group):
    bus = make_bus(bus_kind)
    topic = unique_topic("pause")
    bus.ensure_topics({topic: 2})
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer = bus.consumer(unique_group("pause"), [topic])
    poll_until(consumer, lambda r: consumer.assignment() == {p0, p1})

    consumer.pause([p0])
    for i in range(5):
        bus.produce(topic, b"zero", partition=0)
        bus.produce(topic, b"one", partition=1)
    bus.flush()
    got = poll_until(consumer, lambda r: len(r) >= 5)
    # Keep polling a little: nothing of the paused partition may come, however long we poll.
    for _ in range(5):
        got.extend(consumer.poll(timeout_s=0.2))
    assert {m.partition for m in got} == {1} and len(got) == 5
    assert consumer.assignment() == {p0, p1}  # paused partitions stay assigned

    consumer.resume([p0])
    rest = poll_until(consumer, lambda r: len(r) >= 5)
    assert [(m.partition, m.offset, m.value) for m in rest] == [(0, i, b"zero") for i in range(5)]


# -- rebalances and failures ------------------------------------------------------------------------------------------


def test_a_member_that_closes_without_committing_has_its_records_redelivered(
    bus_kind, make_bus, unique_topic, unique_group
):
    bus = make_bus(bus_kind)
    topic, group = unique_topic("leave"), unique_group("leave")
    bus.ensure_topics({topic: 4})
    for p in range(4):
        for i in range(10):
            bus.produce(topic, f"{p}:{i}".encode(), partition=p)
    bus.flush()

    # A processes everything but commits only partitions 2 and 3, then leaves.
    def commit_partitions_2_and_3(batch: list[Message]) -> dict[TopicPartition, int]:
        return {tp: off for tp, off in next_offsets(batch).items() if tp.partition >= 2}

    a = Member(bus, group, [topic], "a", commit=commit_partitions_2_and_3)
    wait_for(lambda: len(a.snapshot()) >= 40, "member a to read all 40 records")
    a.stop("close")
    assert len(a.snapshot()) == 40

    b = Member(bus, group, [topic], "b", commit=commit_all)
    wait_for(lambda: len(b.snapshot()) >= 20, "member b to get the 20 uncommitted records")
    bus.produce(topic, b"marker", partition=2)  # b must see this, and nothing older of partition 2
    bus.flush()
    wait_for(lambda: any(m.value == b"marker" for m in b.snapshot()), "member b to read the marker")
    b.stop("close")
    got = sorted((m.partition, m.offset) for m in b.snapshot())
    assert got == sorted([(p, i) for p in (0, 1) for i in range(10)] + [(2, 10)])


def test_rebalance_revokes_before_assigning_and_commits_on_revoke_hold(
    bus_kind, make_bus, unique_topic, unique_group
):
    bus = make_bus(bus_kind)
    topic, group = unique_topic("rebalance"), unique_group("rebalance")
    bus.ensure_topics({topic: 4})
    all_tps = {TopicPartition(topic, p) for p in range(4)}
    for p in range(4):
        for i in range(5):
            bus.produce(topic, f"old {p}:{i}".encode(), partition=p)
    bus.flush()

    events: list[tuple[str, str, frozenset[TopicPartition]]] = []
    # A commits nothing as it goes, only in on_revoke: that alone must keep its records from coming back.
    a = Member(bus, group, [topic], "a", events=events, on_revoke_commit=True)
    wait_for(lambda: len(a.snapshot()) >= 20, "member a to read all 20 records")
    b = Member(bus, group, [topic], "b", events=events, commit=commit_all)
    # Each member's assignment is read on the test thread while its own thread updates it, so the two reads can
    # straddle a rebalance: wait for a settled split; the event order below is what proves revoke-before-assign.
    wait_for(
        lambda: a.assignment and b.assignment and a.assignment | b.assignment == all_tps
        and not a.assignment & b.assignment,
        "the group to share the partitions between a and b",
    )
    for p in range(4):
        bus.produce(topic, f"new {p}".encode(), partition=p)
    bus.flush()
    wait_for(
        lambda: sum(m.value.startswith(b"new") for m in a.snapshot() + b.snapshot()) >= 4,
        "the new records to reach the group",
    )
    b.stop()
    a.stop()

    assert not [m for m in b.snapshot() if m.value.startswith(b"old")], "records committed on revoke came back"
    new = {m.value for m in a.snapshot() + b.snapshot() if m.value.startswith(b"new")}
    assert new == {f"new {p}".encode() for p in range(4)}
    a_revoke = next(i for i, (kind, who, tps) in enumerate(events) if kind == "revoke" and who == "a" and tps)
    b_assign = next(i for i, (kind, who, tps) in enumerate(events) if kind == "assign" and who == "b" and tps)
    assert a_revoke < b_assign, f"b was assigned before a revoked: {events}"
    assert events[a_revoke][2] == all_tps


def test_a_partition_given_back_to_the_same_member_restarts_from_the_committed_offset(
    bus_kind, make_bus, unique_topic, unique_group
):
    """A member that kept uncommitted records when its partitions were revoked reads them again when the rebalance
    hands the same partitions back: a consumer loop forgets unfinished records at a revoke (kafka-python 3 keeps the
    fetch position of a partition that stays with its member, which lost those records)."""
    bus = make_bus(bus_kind)
    topic, group = unique_topic("giveback"), unique_group("giveback")
    bus.ensure_topics({topic: 4})
    for p in range(4):
        for i in range(5):
            bus.produce(topic, f"{p}:{i}".encode(), partition=p)
    bus.flush()
    a = Member(bus, group, [topic], "a")  # commits nothing
    wait_for(lambda: len(a.snapshot()) >= 20, "member a to read all 20 records")
    b = Member(bus, group, [topic], "b", commit=commit_all)
    wait_for(lambda: a.assignment and b.assignment and len(a.assignment | b.assignment) == 4
             and not a.assignment & b.assignment, "the group to share the partitions between a and b")
    kept = {tp.partition for tp in a.assignment}
    wait_for(lambda: all(sum(m.partition == p for m in a.snapshot()) >= 10 for p in kept),
             f"member a to read partitions {sorted(kept)} again from their committed offset (none)")
    wait_for(lambda: len(b.snapshot()) >= 5 * (4 - len(kept)), "member b to read its partitions")
    again = Counter((m.partition, m.offset) for m in a.snapshot() if m.partition in kept)
    b.stop()  # (a rebalance: a gets every partition back and reads them again)
    a.stop()
    assert sorted(again) == [(p, i) for p in sorted(kept) for i in range(5)] and set(again.values()) == {2}


def test_a_killed_member_has_its_uncommitted_records_redelivered(
    bus_kind, make_bus, unique_topic, unique_group, kafka_bootstrap_if_kafka, tmp_path
):
    """A member dies after processing records but before committing them: the group gets them again.

    Kafka: the member is a real subprocess (consumer_proc.py) killed with SIGKILL; the broker expires it after the
    session timeout and gives its partitions to the survivor. Memory: a subprocess cannot share the bus's memory,
    so the death is simulated in-process by dropping the member without close or commit (`simulate_crash`).
    """
    bus = make_bus(bus_kind)
    topic, group = unique_topic("kill"), unique_group("kill")
    bus.ensure_topics({topic: 2})
    for p in range(2):
        for i in range(10):
            bus.produce(topic, f"{p}:{i}".encode(), partition=p)
    bus.flush()

    if bus_kind == "kafka":
        stderr_path = tmp_path / "consumer_proc.stderr"
        with open(stderr_path, "wb") as stderr:  # a file, not a pipe: kafka-python's logging cannot fill it and block
            proc = subprocess.Popen(
                [sys.executable, str(CONSUMER_PROC), kafka_bootstrap_if_kafka, topic, group, "20", "5"],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        try:
            line = proc.stdout.readline()  # printed once 20 are processed and 5 per partition committed
            if line.strip() != "processed 20 committed 5":
                proc.kill()
                proc.wait()
                pytest.fail(f"consumer process said {line!r}; stderr: {stderr_path.read_text()[-2000:]}")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    else:
        victim = bus.consumer(group, [topic])
        got = poll_until(victim, lambda r: len(r) >= 20)
        victim.commit({tp: 5 for tp in {m.tp for m in got}})
        victim.simulate_crash()

    survivor = bus.consumer(group, [topic])
    again = poll_until(survivor, lambda r: len(r) >= 10)
    for _ in range(3):
        again.extend(survivor.poll(timeout_s=0.2))
    assert sorted((m.partition, m.offset) for m in again) == [(p, i) for p in range(2) for i in range(5, 10)]


def test_many_records_through_three_members_lose_none(bus_kind, make_bus, unique_topic, unique_group):
    """10,000 records, produced while three members join one group: every record is delivered at least once."""
    bus = make_bus(bus_kind)
    topic, group = unique_topic("many"), unique_group("many")
    bus.ensure_topics({topic: 6})
    n = 10_000
    members = [Member(bus, group, [topic], f"m{i}", commit=commit_all) for i in range(3)]
    for i in range(n):
        bus.produce(topic, f"{i}".encode(), key=f"id-{i}".encode())
        if i % 2000 == 0:
            bus.flush()
    bus.flush()

    def seen() -> Counter[bytes]:
        return Counter(m.value for member in members for m in member.snapshot())

    wait_for(lambda: len(seen()) >= n, f"all {n} records to be delivered", timeout_s=120)
    wait_for(lambda: all(member.assignment for member in members), "every member to own partitions")
    for member in members:
        member.stop()
    counts = seen()
    assert set(counts) == {f"{i}".encode() for i in range(n)}
    redelivered = sum(c - 1 for c in counts.values())
    assert redelivered < n  # at-least-once: repeats only around rebalances


@pytest.fixture
def kafka_bootstrap_if_kafka(bus_kind, request) -> str | None:
    return request.getfixturevalue("kafka_bootstrap") if bus_kind == "kafka" else None
