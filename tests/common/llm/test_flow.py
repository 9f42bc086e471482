"""Flow control of LLM endpoints: the adaptive limit, the circuit breaker and the endpoint pool (pure, fake clock)."""

from __future__ import annotations

import asyncio

import pytest
from linksyn.common.llm.config import FlowConfig, LLMConfig
from linksyn.common.llm.flow import (
    AdaptiveLimit,
    AllCircuitsOpen,
    CircuitBreaker,
    CircuitState,
    EndpointPool,
    Outcome,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def cfg(**kw) -> LLMConfig:
    flow = kw.pop("flow", {})
    return LLMConfig(**kw, flow=FlowConfig(**flow))


def test_slow_start_doubles_per_round_then_an_overload_cuts_once_per_round():
    lim = AdaptiveLimit(cfg(initial_concurrency=4, max_concurrency=64, flow={"latency_tolerance": 0}))
    assert lim.slots == 4
    for _ in range(4):  # one round of 4 healthy replies: slow start adds one per reply
        lim.on_success(lim.ticket(), 1.0, 10)
    assert lim.slots == 8
    in_flight = [lim.ticket() for _ in range(8)]
    lim.on_overload(in_flight[0])
    assert lim.slots == int(8 * 0.7) and not lim.slow_start
    for t in in_flight[1:]:  # the rest of that round answered by the same cut
        lim.on_overload(t)
    assert lim.slots == 5 and lim.cuts == 1
    lim.on_overload(lim.ticket())  # sent after the cut: a new overload
    assert lim.cuts == 2 and lim.slots == int(8 * 0.7 * 0.7)
    before = lim.limit
    for _ in range(10):  # congestion avoidance: about +1 per round of `limit` replies
        lim.on_success(lim.ticket(), 1.0, 10)
    assert before + 1 < lim.limit < before + 3


def test_limit_stays_within_floor_and_ceiling_and_fixed_never_moves():
    lim = AdaptiveLimit(cfg(initial_concurrency=2, min_concurrency=2, max_concurrency=5))
    for _ in range(50):
        lim.on_success(lim.ticket(), 1.0, 10)
    assert lim.slots == 5
    for _ in range(20):
        lim.on_overload(lim.ticket())
    assert lim.slots == 2
    fixed = AdaptiveLimit(cfg(concurrency="fixed", max_concurrency=7))
    fixed.on_overload(fixed.ticket())
    fixed.on_success(fixed.ticket(), 100.0, 1)
    assert fixed.slots == 7


def test_rising_latency_per_token_cuts_the_limit():
    lim = AdaptiveLimit(cfg(initial_concurrency=4, max_concurrency=64, flow={"latency_tolerance": 2.0}))
    for _ in range(4):
        lim.on_success(lim.ticket(), 1.0, 100)  # 0.01 s/token: the baseline
    grown = lim.limit
    assert grown == 8
    for _ in range(8):
        lim.on_success(lim.ticket(), 5.0, 100)  # 0.05 s/token: 5x the baseline, the server queues
    assert lim.limit == pytest.approx((grown + 7) * 0.9)  # seven grew it, then the round's median cut it
    assert lim.cuts == 1 and not lim.slow_start


def test_circuit_opens_after_failures_in_a_row_probes_once_and_doubles_when_the_probe_fails():
    clock = FakeClock()
    cb = CircuitBreaker(cfg(flow={"circuit_failures": 3, "circuit_open_s": 5, "circuit_max_open_s": 15}), clock)
    cb.on_failure("HTTP 500")
    cb.on_success()  # a success in between: not in a row
    for _ in range(3):
        assert cb.may_send(clock())
        cb.on_failure("HTTP 500")
    assert cb.state is CircuitState.OPEN and not cb.may_send(clock())
    clock.now += 5
    assert cb.may_send(clock()) and cb.state is CircuitState.HALF_OPEN
    cb.on_send()
    assert not cb.may_send(clock())  # one probe at a time
    cb.on_failure("timeout")
    assert cb.state is CircuitState.OPEN and cb.open_for == 10
    clock.now += 9.9
    assert not cb.may_send(clock())
    clock.now += 0.1
    assert cb.may_send(clock())
    cb.on_send()
    cb.on_failure("timeout")
    assert cb.open_for == 15  # capped
    clock.now += 15
    assert cb.may_send(clock())
    cb.on_send()
    cb.on_success()
    assert cb.state is CircuitState.CLOSED and cb.open_for == 5 and cb.may_send(clock())


def run(coro):
    return asyncio.run(coro)


def test_pool_sends_to_the_endpoint_with_the_most_free_share_and_failures_shift_load():
    async def scenario():
        pool = EndpointPool(["http://a", "http://b"], cfg(initial_concurrency=4, flow={"circuit_failures": 2}))
        slots = [await pool.acquire() for _ in range(8)]
        assert sorted(s.endpoint.url for s in slots) == ["http://a"] * 4 + ["http://b"] * 4
        for s in slots:
            s.release(Outcome.FAILED if s.endpoint.url == "http://a" else Outcome.OK, completion_tokens=5,
                      error="HTTP 500")
        a, b = pool.endpoints
        assert a.circuit.state is CircuitState.OPEN and b.circuit.state is CircuitState.CLOSED
        later = [await pool.acquire() for _ in range(6)]
        assert {s.endpoint.url for s in later} == {"http://b"}  # a's circuit is open: b takes everything
        assert b.limit.slots >= 6 and a.limit.slots < 4

    run(scenario())


def test_retry_after_pauses_an_adaptive_endpoint_but_not_a_fixed_one():
    async def scenario(mode):
        clock = FakeClock()
        pool = EndpointPool(["http://a"], cfg(concurrency=mode, initial_concurrency=4), clock=clock)
        s = await pool.acquire()
        s.release(Outcome.OVERLOADED, retry_after_s=2.0)
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        paused = not waiter.done()
        clock.now += 2.0
        got = await asyncio.wait_for(waiter, 5)
        return paused, got.endpoint.url

    assert run(scenario("adaptive")) == (True, "http://a")
    assert run(scenario("fixed")) == (False, "http://a")


def test_when_every_circuit_stays_open_acquire_gives_up_after_circuit_wait_s():
    async def scenario():
        pool = EndpointPool(["http://a"], cfg(flow={"circuit_failures": 1, "circuit_open_s": 60,
                                                     "circuit_wait_s": 0.2}))
        s = await pool.acquire()
        s.release(Outcome.FAILED, error="connection refused")
        with pytest.raises(AllCircuitsOpen, match="connection refused"):
            await pool.acquire()

    run(scenario())


def test_a_released_slot_wakes_a_waiter():
    async def scenario():
        pool = EndpointPool(["http://a"], cfg(concurrency="fixed", max_concurrency=1))
        first = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        first.release(Outcome.OK, completion_tokens=1)
        second = await asyncio.wait_for(waiter, 2)
        assert second.endpoint.in_flight == 1

    run(scenario())


def test_after_a_cool_down_one_request_goes_alone_and_the_rest_follow_its_good_reply():
    async def scenario():
        clock = FakeClock()
        pool = EndpointPool(["http://a"], cfg(initial_concurrency=4, flow={"decrease_factor": 0.9}), clock=clock)
        first = await pool.acquire()
        first.release(Outcome.OVERLOADED, retry_after_s=1.0)
        waiters = [asyncio.ensure_future(pool.acquire()) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiters)  # cooling down
        clock.now += 1.0
        probe = await asyncio.wait_for(asyncio.shield(asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)), 5)
        await asyncio.sleep(0.05)
        done = [w for w in waiters if w.done()]
        assert len(done) == 1  # alone, although the limit has room for three
        done[0].result().release(Outcome.OK, completion_tokens=1)
        await asyncio.wait_for(asyncio.gather(*[w for w in waiters if not w.done()]), 5)
        del probe

    run(scenario())
