"""Streaming stages (`process_stream`): each record's outputs leave as soon as the stage yields its Result, commits
stay in order, failures and shutdown keep the loop's guarantees."""

from __future__ import annotations

import threading
import uuid
from typing import Iterator, Sequence

import pytest
from linksyn.common.bus import InMemoryBus, Message, OutRecord, TopicPartition
from linksyn.common.runtime.stage import Result
from linksyn.v1 import records_pb2

from .conftest import RecordingBus, fast_runtime, read_topic, wait_for

pytestmark = pytest.mark.timeout(120)


def _topics() -> tuple[str, str]:
    u = uuid.uuid4().hex[:8]
    return f"s-in-{u}", f"s-out-{u}"


class GatedStream:
    """Yields each record whose value is not in `held` at once, in reverse order; the held ones only after `gate`
    opens. `fail_after` raises once that many records were yielded (first batch only); `skip` leaves those values
    out of the stream (first time only)."""

    def __init__(self, src: str, dst: str, held: set[bytes] = frozenset(), fail_after: int | None = None,
                 skip: set[bytes] = frozenset()) -> None:
        self.name = f"stream-{uuid.uuid4().hex[:8]}"
        self.input_topics = [src]
        self.dst = dst
        self.held = set(held)
        self.gate = threading.Event()
        self.fail_after = fail_after
        self.skip = set(skip)
        self.batches: list[list[bytes]] = []
        self.lock = threading.Lock()

    def process_stream(self, batch: Sequence[Message]) -> Iterator[tuple[int, Result]]:
        with self.lock:
            self.batches.append([m.value for m in batch])
            first = len(self.batches) == 1
        order = list(reversed(range(len(batch))))
        n = 0
        free = [i for i in order if batch[i].value not in self.held]
        for i in free + [i for i in order if batch[i].value in self.held]:
            if batch[i].value in self.held:
                assert self.gate.wait(60), "gate never opened"
            if first and self.fail_after is not None and n == self.fail_after:
                raise RuntimeError("the engine died mid-batch")
            if first and batch[i].value in self.skip:
                continue
            n += 1
            if batch[i].value.startswith(b"poison"):
                yield i, Result.failed("poison record", permanent=True)
            else:
                yield i, Result.ok(OutRecord(self.dst, batch[i].value, key=batch[i].key))


def produce(bus, src: str, values: list[bytes]) -> None:
    bus.ensure_topics({src: 1})
    for v in values:
        bus.produce(src, v, key=v)


def test_records_leave_as_they_finish_and_commits_wait_for_the_lowest_unfinished(start_loop):
    bus = RecordingBus(InMemoryBus())
    src, dst = _topics()
    produce(bus, src, [b"v0", b"v1", b"v2", b"v3"])
    stage = GatedStream(src, dst, held={b"v1"})
    loop = start_loop(bus, stage, fast_runtime(batch_size=4, batch_wait_s=0.2))
    got = read_topic(bus, dst, 3)
    assert sorted(m.value for m in got) == [b"v0", b"v2", b"v3"]  # out while v1 is still being worked on
    wait_for(lambda: bus.last_committed().get(TopicPartition(src, 0)) == 1, "a commit up to v1")
    assert loop.stats()["records_out"] == 3 and loop.stats()["in_flight"] == 1
    assert stage.batches == [[b"v0", b"v1", b"v2", b"v3"]]  # one batch, not four
    tp = TopicPartition(src, 0)
    assert max(c[tp] for c in bus.commits if tp in c) == 1  # never past the unfinished v1
    stage.gate.set()
    wait_for(loop.drained, "the loop to drain")
    assert sorted(m.value for m in read_topic(bus, dst, 4)) == [b"v0", b"v1", b"v2", b"v3"]
    assert bus.last_committed()[tp] == 4


def test_a_stream_that_dies_keeps_what_it_yielded_and_retries_the_rest_alone(start_loop):
    bus = InMemoryBus()
    src, dst = _topics()
    produce(bus, src, [b"a", b"b", b"c", b"d"])
    stage = GatedStream(src, dst, fail_after=2)
    stage.gate.set()
    loop = start_loop(bus, stage, fast_runtime(batch_size=4, batch_wait_s=0.2))
    wait_for(loop.drained, "the loop to drain")
    out = read_topic(bus, dst, 4)
    assert sorted(m.value for m in out) == [b"a", b"b", b"c", b"d"]  # each once: nothing yielded is redone
    assert stage.batches[0] == [b"a", b"b", b"c", b"d"]
    assert sorted(b[0] for b in stage.batches[1:]) == [b"a", b"b"] and all(len(b) == 1 for b in stage.batches[1:])
    s = loop.stats()
    assert s["batches_split"] == 1 and s["dead_letters"] == 0 and s["records_failed"] == 0


def test_a_record_the_stream_forgot_is_retried_and_a_failed_one_dead_lettered(start_loop):
    bus = InMemoryBus()
    src, dst = _topics()
    produce(bus, src, [b"ok1", b"lost", b"poison", b"ok2"])
    stage = GatedStream(src, dst, skip={b"lost"})
    stage.gate.set()
    loop = start_loop(bus, stage, fast_runtime(batch_size=4, batch_wait_s=0.2))
    wait_for(loop.drained, "the loop to drain")
    assert sorted(m.value for m in read_topic(bus, dst, 3)) == [b"lost", b"ok1", b"ok2"]
    [dl_msg] = read_topic(bus, loop.topics.dead_letter, 1)
    dl = records_pb2.DeadLetter()
    dl.ParseFromString(dl_msg.value)
    assert dl.payload == b"poison" and "poison record" in dl.error and dl.attempts == 1


def test_stop_mid_stream_commits_what_finished_and_hands_back_the_rest(start_loop):
    bus = RecordingBus(InMemoryBus())
    src, dst = _topics()
    produce(bus, src, [b"x0", b"x1", b"x2", b"x3"])
    stage = GatedStream(src, dst, held={b"x2"})
    group = f"g-{uuid.uuid4().hex[:8]}"
    loop = start_loop(bus, stage, fast_runtime(batch_size=4, batch_wait_s=0.2, shutdown_timeout_s=0.5), group=group)
    read_topic(bus, dst, 3)
    assert loop.stop(timeout=30)  # x2 never finishes in time
    assert bus.last_committed()[TopicPartition(src, 0)] == 2  # x0, x1 committed; x3 done but after x2
    assert loop.stats()["handed_back"] == 1
    # The next member of the group gets x2 and x3 again (at-least-once), never x0 or x1.
    again = GatedStream(src, dst)
    loop2 = start_loop(bus, again, fast_runtime(batch_size=4, batch_wait_s=0.2), group=group)
    wait_for(loop2.drained, "the second member to drain")
    assert again.batches == [[b"x2", b"x3"]]
    stage.gate.set()


def test_yielding_a_record_twice_or_out_of_range_fails_the_rest_of_the_batch(start_loop):
    class Twice:
        name = f"twice-{uuid.uuid4().hex[:8]}"

        def __init__(self, src: str, dst: str) -> None:
            self.input_topics = [src]
            self.dst = dst
            self.calls = 0

        def process_stream(self, batch):
            self.calls += 1
            yield 0, Result.ok(OutRecord(self.dst, batch[0].value))
            if len(batch) > 1:
                yield 0, Result.ok()  # a bug in the stage: caught, the others are retried alone
            for i in range(1, len(batch)):
                yield i, Result.ok(OutRecord(self.dst, batch[i].value))

    bus = InMemoryBus()
    src, dst = _topics()
    produce(bus, src, [b"p", b"q", b"r"])
    loop = start_loop(bus, Twice(src, dst), fast_runtime(batch_size=3, batch_wait_s=0.2))
    wait_for(loop.drained, "the loop to drain")
    assert sorted(m.value for m in read_topic(bus, dst, 3)) == [b"p", b"q", b"r"]
    assert loop.stats()["batches_split"] == 1
