"""InMemoryBus details the conformance suite does not reach: hashing, errors, blocking polls, the rebalance barrier."""

from __future__ import annotations

import os
import random
import threading

import pytest
from kafka.partitioner.default import murmur2 as kafka_murmur2

from linksyn.common.bus import BusClosedError, CommitFailedError, InMemoryBus, OutRecord, TopicPartition, UnknownTopicError
from linksyn.common.bus.base import murmur2_partition
from linksyn.common.bus.memory import key_partition, murmur2, murmur2_many


def sample_keys() -> list[bytes]:
    rng = random.Random(7)
    keys = [bytes(rng.randrange(256) for _ in range(n)) for n in range(0, 70)]  # every tail length, empty too
    keys += [os.urandom(16).hex().encode() for _ in range(300)]  # content ids, the common case
    keys += [b"\xff" * 8, b"\x80\x00\x00\x00" * 3]
    return keys


def test_murmur2_equals_kafka_python():
    for key in sample_keys():
        assert murmur2(key) == kafka_murmur2(key), key


def test_murmur2_many_equals_kafka_python_for_mixed_lengths():
    keys = sample_keys()
    assert murmur2_many(keys).tolist() == [kafka_murmur2(k) for k in keys]


def test_key_partition_is_murmur2_partition_cached_or_not():
    for key in sample_keys():
        for n in (1, 3, 12):
            assert key_partition(key, n) == murmur2_partition(key, n)
            assert key_partition(key, n) == murmur2_partition(key, n)  # second call: from the cache


def test_produce_many_places_records_as_produce_does():
    keys = [f"seed-{i}".encode() for i in range(200)] + [None] * 3
    one, many = InMemoryBus(), InMemoryBus()
    for bus in (one, many):
        bus.ensure_topics({"t": 7})
    for k in keys:
        if k is not None:
            one.produce("t", b"v" + k, key=k)
    many.produce_many([OutRecord("t", b"v" + k, key=k) for k in keys if k is not None])
    many.produce_many([OutRecord("t", b"null key") for _ in range(3)])

    def placed(bus: InMemoryBus) -> dict[bytes, tuple[int, int]]:
        got = bus.consumer("g", ["t"]).poll(max_records=1000, timeout_s=0)
        return {m.value: (m.partition, m.offset) for m in got if m.key is not None}

    assert placed(one) == placed(many)
    assert many.consumer("g2", ["t"]).poll(max_records=1000, timeout_s=0).__len__() == 203


def test_poll_blocks_until_a_record_arrives():
    bus = InMemoryBus()
    bus.ensure_topics({"t": 1})
    consumer = bus.consumer("g", ["t"])
    assert consumer.poll(timeout_s=0) == []
    started = threading.Event()

    def produce_later() -> None:
        started.wait()
        bus.produce("t", b"late")

    threading.Thread(target=produce_later).start()
    started.set()
    got = consumer.poll(timeout_s=30)  # returns as soon as the record is there, long before 30 s
    assert [m.value for m in got] == [b"late"]


def test_closing_the_bus_wakes_a_blocked_poll_with_an_error():
    bus = InMemoryBus()
    bus.ensure_topics({"t": 1})
    consumer = bus.consumer("g", ["t"])
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            consumer.poll(timeout_s=60)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    t = threading.Thread(target=poll)
    t.start()
    bus.close()
    t.join(timeout=30)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], BusClosedError)
    with pytest.raises(BusClosedError):
        bus.produce("t", b"x")


def test_commit_of_a_partition_the_member_does_not_own_fails():
    bus = InMemoryBus()
    bus.ensure_topics({"t": 2})
    bus.produce("t", b"x", partition=0)
    a = bus.consumer("g", ["t"])
    a.poll(timeout_s=0)
    assert a.assignment() == {TopicPartition("t", 0), TopicPartition("t", 1)}
    b = bus.consumer("g", ["t"])
    a.poll(timeout_s=0)  # a revokes both; the group now splits them
    b.poll(timeout_s=0)
    a.poll(timeout_s=0)
    assert a.assignment() == {TopicPartition("t", 0)} and b.assignment() == {TopicPartition("t", 1)}
    with pytest.raises(CommitFailedError, match=r"t\[1\]"):
        a.commit({TopicPartition("t", 1): 0})
    with pytest.raises(CommitFailedError, match="outside"):
        a.commit({TopicPartition("t", 0): 5})
    a.commit({TopicPartition("t", 0): 1})
    assert b.committed(TopicPartition("t", 0)) == 1


def test_a_member_holding_partitions_holds_up_the_rebalance_until_it_polls():
    """Eager protocol: nobody takes partitions before every owner has revoked (and could commit) them."""
    bus = InMemoryBus()
    bus.ensure_topics({"t": 2})
    revoked: list[set[TopicPartition]] = []
    a = bus.consumer("g", ["t"], on_revoke=revoked.append)
    a.poll(timeout_s=0)
    assert len(a.assignment()) == 2
    b = bus.consumer("g", ["t"])
    assert b.poll(timeout_s=0.05) == [] and b.assignment() == set()  # a has not revoked yet
    a.poll(timeout_s=0)
    assert revoked == [{TopicPartition("t", 0), TopicPartition("t", 1)}]
    b.poll(timeout_s=0)
    assert len(a.assignment()) == 1 and len(b.assignment()) == 1


def test_close_runs_on_revoke_and_crash_does_not():
    bus = InMemoryBus()
    bus.ensure_topics({"t": 1})
    calls: list[str] = []
    a = bus.consumer("g", ["t"], on_revoke=lambda tps: calls.append("a"))
    b = bus.consumer("g2", ["t"], on_revoke=lambda tps: calls.append("b"))
    a.poll(timeout_s=0)
    b.poll(timeout_s=0)
    a.close()
    b.simulate_crash()
    assert calls == ["a"]
    with pytest.raises(BusClosedError):
        a.poll()


def test_topics_created_later_are_assigned_to_subscribed_groups():
    bus = InMemoryBus()
    consumer = bus.consumer("g", ["later"])  # auto-created with default_partitions, like a broker's num.partitions
    assert bus.partitions_for("later") == 1
    bus.ensure_topics({"also": 3})
    other = bus.consumer("g", ["also"])
    other.poll(timeout_s=0)
    consumer.poll(timeout_s=0)
    other.poll(timeout_s=0)
    assert consumer.assignment() == {TopicPartition("later", 0)}
    assert other.assignment() == {TopicPartition("also", p) for p in range(3)}


def test_bad_arguments_are_refused_with_the_offending_value():
    bus = InMemoryBus()
    with pytest.raises(ValueError, match="illegal"):
        bus.ensure_topics({"no spaces": 1})
    with pytest.raises(ValueError, match="partitions must be >= 1, got 0"):
        bus.ensure_topics({"t": 0})
    bus.ensure_topics({"t": 2})
    with pytest.raises(ValueError, match="partition 2 out of range"):
        bus.produce("t", b"x", partition=2)
    with pytest.raises(TypeError, match="bytes, got str"):
        bus.produce("t", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\(str, bytes\)"):
        bus.produce("t", b"x", headers=[("h", "not bytes")])  # type: ignore[list-item]
    with pytest.raises(UnknownTopicError, match="nope"):
        bus.partitions_for("nope")
    with pytest.raises(TypeError, match="string"):
        bus.consumer("g", "t")  # type: ignore[arg-type]
    consumer = bus.consumer("g", ["t"])
    consumer.poll(timeout_s=0)
    with pytest.raises(ValueError, match="not assigned"):
        consumer.pause([TopicPartition("other", 0)])
