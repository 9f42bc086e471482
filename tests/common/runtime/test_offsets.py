"""OffsetTracker: the committable offset is the lowest unfinished one, whatever the completion order."""

from __future__ import annotations

import random

import pytest

from linksyn.common.bus.base import TopicPartition
from linksyn.common.runtime.offsets import OffsetTracker

A = TopicPartition("t", 0)
B = TopicPartition("t", 1)


def test_out_of_order_completion_commits_only_below_the_lowest_unfinished() -> None:
    t = OffsetTracker()
    for off in range(5):
        t.add(A, off)
    assert t.committable() == {A: 0}
    t.done(A, 3)
    t.done(A, 1)
    assert t.committable() == {A: 0}  # 0 unfinished
    t.done(A, 0)
    assert t.committable() == {A: 2}  # 0, 1 done; 2 unfinished
    t.done(A, 2)
    assert t.committable() == {A: 4}  # 3 was done already
    t.done(A, 4)
    assert t.committable() == {A: 5}
    assert t.in_flight() == 0


def test_partitions_are_independent_and_gaps_in_offsets_are_fine() -> None:
    t = OffsetTracker()
    for off in (10, 12, 15):  # compacted topics and transaction markers leave gaps
        t.add(A, off)
    t.add(B, 0)
    t.done(A, 12)
    t.done(B, 0)
    assert t.committable() == {A: 10, B: 1}
    t.done(A, 10)
    assert t.committable() == {A: 15, B: 1}
    t.done(A, 15)
    assert t.committable() == {A: 16, B: 1}
    assert t.committable([B]) == {B: 1}
    assert t.in_flight(A) == 0 and t.in_flight() == 0


def test_matches_a_brute_force_model_under_random_completion_order() -> None:
    rng = random.Random(7)
    t = OffsetTracker()
    added: dict[TopicPartition, list[int]] = {A: [], B: []}
    finished: set[tuple[TopicPartition, int]] = set()
    nxt = {A: 0, B: 0}
    open_: list[tuple[TopicPartition, int]] = []
    for _ in range(3000):
        if open_ and rng.random() < 0.5:
            tp, off = open_.pop(rng.randrange(len(open_)))
            t.done(tp, off)
            finished.add((tp, off))
        else:
            tp = rng.choice([A, B])
            nxt[tp] += rng.randint(1, 3)
            t.add(tp, nxt[tp])
            added[tp].append(nxt[tp])
            open_.append((tp, nxt[tp]))
        for tp, offs in added.items():
            if not offs:
                continue
            unfinished = [o for o in offs if (tp, o) not in finished]
            expected = min(unfinished) if unfinished else offs[-1] + 1
            assert t.committable()[tp] == expected
    assert t.in_flight() == len(open_)


def test_offsets_must_increase_and_done_must_be_in_flight() -> None:
    t = OffsetTracker()
    t.add(A, 5)
    with pytest.raises(ValueError, match=r"offset 4 of t\[0\] added after offset 5"):
        t.add(A, 4)
    with pytest.raises(ValueError, match="not in flight"):
        t.done(A, 6)
    t.done(A, 5)
    with pytest.raises(ValueError, match="not in flight"):
        t.done(A, 5)  # twice


def test_forget_drops_a_revoked_partition_and_moves_its_generation() -> None:
    t = OffsetTracker()
    for off in range(3):
        t.add(A, off)
        t.add(B, off)
    t.done(A, 0)
    assert t.generation(A) == 0
    assert t.forget([A]) == 2
    assert t.generation(A) == 1 and t.generation(B) == 0
    assert t.committable() == {B: 0}
    assert t.in_flight() == 3
    with pytest.raises(ValueError):
        t.done(A, 1)  # work of the lost assignment
    t.add(A, 1)  # reassigned: starts again from the committed offset
    assert t.committable()[A] == 1
