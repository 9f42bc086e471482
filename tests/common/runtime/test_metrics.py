"""The consumer metrics, scraped from the /metrics endpoint while a loop runs, and their Stats form."""

from __future__ import annotations

import re
import uuid
from typing import Callable, Iterator

import httpx
import pytest

from linksyn.common.bus import InMemoryBus
from linksyn.common.runtime.loop import ConsumerLoop
from linksyn.common.runtime.metrics import flattened_metrics, start_metrics_server, stop_metrics_server
from linksyn.common.runtime.stats import stats_reply

from .conftest import EchoStage, fast_runtime, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def metrics_port() -> Iterator[int]:
    server, port = start_metrics_server("127.0.0.1", 0)
    try:
        yield port
    finally:
        stop_metrics_server(server)


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return 0.0


def test_metrics_endpoint_shows_the_consumer_counters_moving(
    metrics_port: int, start_loop: Callable[..., ConsumerLoop]
) -> None:
    assert metrics_port > 0
    bus = InMemoryBus()
    u = uuid.uuid4().hex[:8]
    src, dst = f"m-in-{u}", f"m-out-{u}"
    bus.ensure_topics({src: 2, dst: 1})
    stage = EchoStage(src, dst)
    svc = stage.name

    def scrape() -> str:
        r = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        r.raise_for_status()
        return r.text

    for i in range(30):
        bus.produce(src, b"%d" % i, key=b"%d" % i)
    loop = start_loop(bus, stage, fast_runtime())
    wait_for(loop.drained, "drain")
    first = scrape()
    assert _sample(first, "linksyn_consumer_records_in_total", service=svc, topic=src) == 30
    assert _sample(first, "linksyn_consumer_records_out_total", service=svc, topic=dst) == 30
    assert _sample(first, "linksyn_consumer_processing_seconds_count", service=svc) >= 30 / 4
    assert _sample(first, "linksyn_consumer_lag_records", service=svc, topic=src) == 0
    assert _sample(first, "linksyn_consumer_in_flight", service=svc) == 0
    assert "linksyn_consumer_dead_letters_total" in first and "linksyn_consumer_records_failed_total" in first

    for i in range(30, 50):
        bus.produce(src, b"%d" % i, key=b"%d" % i)
    wait_for(loop.drained, "drain again")
    second = scrape()
    assert _sample(second, "linksyn_consumer_records_in_total", service=svc, topic=src) == 50
    assert _sample(second, "linksyn_consumer_records_out_total", service=svc, topic=dst) == 50

    flat = flattened_metrics(svc)
    assert flat[f"consumer_records_in_total{{topic={src}}}"] == 50
    assert flat["consumer_in_flight"] == 0
    assert not any(k.endswith("_bucket") or "service=" in k for k in flat)
    reply = stats_reply(svc, {"extra": 1})
    assert reply.counters[f"consumer_records_out_total{{topic={dst}}}"] == 50
    assert reply.details_json == '{"extra": 1}'


def test_metrics_server_on_a_taken_port_fails_clearly(metrics_port: int) -> None:
    with pytest.raises(OSError):
        start_metrics_server("127.0.0.1", metrics_port)
