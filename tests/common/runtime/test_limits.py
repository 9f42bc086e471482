"""Size limits on the inputs every service takes: records on each consumed topic (runtime.max_record_bytes, checked
before parsing), gRPC requests (server.max_request_bytes, checked by gRPC before parsing) and gRPC query texts
(graph.max_kp_chars). Each service is its real `app.build` over the in-memory bus; gRPC goes through the real
server (`build_grpc_server`)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import grpc
import pytest

from tests.common.runtime.conftest import fast_runtime, read_topic, wait_for
from tests.common.runtime.service_parts import build_every_service

from linksyn.common.bus import InMemoryBus
from linksyn.common.bus.base import Message
from linksyn.common.config import ServerConfig, TopicsConfig
from linksyn.common.runtime.grpc_server import build_grpc_server, grpc_channel
from linksyn.common.runtime.loop import ConsumerLoop
from linksyn.common.runtime.parts import ServiceParts
from linksyn.common.runtime.stage import Result
from linksyn.v1 import graph_pb2, graph_pb2_grpc, records_pb2

pytestmark = pytest.mark.timeout(300)

LIMIT = 4096


@pytest.fixture(scope="module")
def every_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceParts]]:
    yield from build_every_service(tmp_path_factory.mktemp("services"))


class SeenStage:
    """A service's real stage, recording every record handed to `process` or `process_stream` (and not closing it:
    the module's parts are closed once, at the end)."""

    close = None

    def __init__(self, stage: Any) -> None:
        self._stage = stage
        self.name = stage.name
        self.input_topics = list(stage.input_topics)
        self.concurrent_batches = getattr(stage, "concurrent_batches", True)
        self.seen: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def process(self, batch: Sequence[Message]) -> list[Result]:
        with self._lock:
            self.seen.extend((m.topic, m.offset) for m in batch)
        return self._stage.process(batch)

    def __getattr__(self, name: str) -> Any:  # committable, tick: the real stage's hooks
        attr = getattr(self._stage, name)
        if name == "process_stream":  # a streaming stage (synth, extractor): recorded the same way

            def process_stream(batch: Sequence[Message]) -> Any:
                with self._lock:
                    self.seen.extend((m.topic, m.offset) for m in batch)
                return attr(batch)

            return process_stream
        return attr


CONSUMING = ["extractor", "graph", "sampler", "synth", "sink", "trainer"]


@pytest.mark.parametrize("service", CONSUMING)
def test_an_oversized_record_on_every_consumed_topic_is_dead_lettered_unparsed_and_the_stream_goes_on(
    service: str, every_service: dict[str, ServiceParts]
) -> None:
    parts = every_service[service]
    assert parts.stage is not None
    stage = SeenStage(parts.stage)
    bus = InMemoryBus()
    topics = TopicsConfig(dead_letter=f"dl-{uuid.uuid4().hex[:8]}")
    bus.ensure_topics({t: 1 for t in stage.input_topics} | {topics.dead_letter: 1})
    # Not a valid record of any type: parsing it would fail with some other reason.
    oversized = b"\xff" * (LIMIT + 1)
    for topic in stage.input_topics:
        bus.produce(topic, oversized, key=b"big")
        bus.produce(topic, b"", key=b"small")  # an empty record: every stage decides about it, whatever it says
    loop = ConsumerLoop(bus, stage, fast_runtime(max_record_bytes=LIMIT), topics, f"g-{uuid.uuid4().hex[:8]}")
    loop.start()
    try:
        wait_for(loop.drained, f"{service} to finish both records of {stage.input_topics}", timeout_s=120)
    finally:
        assert loop.stop(timeout=60)
    dead = []
    for m in read_topic(bus, topics.dead_letter, len(stage.input_topics)):
        dl = records_pb2.DeadLetter()
        dl.ParseFromString(m.value)
        dead.append(dl)
    oversized_dls = [d for d in dead if d.offset == 0]
    assert sorted(d.topic for d in oversized_dls) == sorted(stage.input_topics)
    for dl in oversized_dls:
        assert dl.error.startswith(f"record of {LIMIT + 1} bytes exceeds runtime.max_record_bytes={LIMIT}"), dl.error
        assert dl.attempts == 0 and dl.service == service and dl.key == b"big"
        # Cut: the dead letter as a whole (key included) fits wherever a record fits.
        assert oversized.startswith(dl.payload) and dl.ByteSize() + len(b"big") <= LIMIT
    # The oversized records never reached the stage; the records after them did.
    assert set(stage.seen) == {(t, 1) for t in stage.input_topics}


def _serve(parts: ServiceParts, **server: Any) -> Iterator[str]:
    srv, port = build_grpc_server(parts, ServerConfig(host="127.0.0.1", grpc_port=0, **server))
    srv.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        srv.stop(grace=None).wait()


@pytest.mark.parametrize("service", CONSUMING)
def test_a_grpc_request_over_max_request_bytes_is_refused_before_parsing(
    service: str, every_service: dict[str, ServiceParts]
) -> None:
    parts = every_service[service]
    limit = 64 * 1024
    stats = f"/{parts.service_names[0]}/Stats"
    for target in _serve(parts, max_request_bytes=limit):
        with grpc_channel(target) as ch:
            call: Callable[..., bytes] = ch.unary_unary(stats)  # raw bytes in and out
            # An unknown field (number 15, length-delimited) of 100 KiB: a well-formed StatsRequest, only too big.
            payload = b"\x7a" + _varint(100 * 1024) + b"x" * (100 * 1024)
            with pytest.raises(grpc.RpcError) as e:
                call(payload, timeout=30)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert str(limit) in (e.value.details() or ""), e.value.details()
            # The server goes on: the same call, small, is answered.
            assert isinstance(call(b"\x7a\x01x", timeout=30), bytes)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_graph_query_text_over_max_kp_chars_is_invalid_argument(every_service: dict[str, ServiceParts]) -> None:
    parts = every_service["graph"]
    for target in _serve(parts):
        with grpc_channel(target) as ch:
            stub = graph_pb2_grpc.GraphServiceStub(ch)
            for rpc in (stub.Lookup, stub.Neighbours, stub.SeedsFor):
                with pytest.raises(grpc.RpcError) as e:
                    rpc(graph_pb2.KPRequest(text="k" * 201), timeout=30)
                assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert e.value.details() == "text is 201 characters, over graph.max_kp_chars=200"
                # At the limit the text is looked up (no such KP, or no snapshot yet).
                with pytest.raises(grpc.RpcError) as e:
                    rpc(graph_pb2.KPRequest(text="k" * 200), timeout=30)
                assert e.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE)


def test_records_up_to_the_limit_reach_the_stage(tmp_path: Path) -> None:
    """The boundary: a record of exactly max_record_bytes is processed, one byte more is dead-lettered."""

    class Count:
        name = "count"
        input_topics = ["in"]

        def __init__(self) -> None:
            self.sizes: list[int] = []

        def process(self, batch: Sequence[Message]) -> list[Result]:
            self.sizes.extend(len(m.value) for m in batch)
            return [Result.ok() for _ in batch]

    bus = InMemoryBus()
    topics = TopicsConfig(dead_letter="dl")
    bus.ensure_topics({"in": 1, "dl": 1})
    for n in (LIMIT, LIMIT + 1, 10):
        bus.produce("in", b"x" * n)
    stage = Count()
    loop = ConsumerLoop(bus, stage, fast_runtime(max_record_bytes=LIMIT), topics, "g").start()
    try:
        wait_for(loop.drained, "drain")
    finally:
        loop.stop(timeout=30)
    assert sorted(stage.sizes) == [10, LIMIT]
    [m] = read_topic(bus, "dl", 1)
    dl = records_pb2.DeadLetter.FromString(m.value)
    assert dl.offset == 1 and f"record of {LIMIT + 1} bytes exceeds" in dl.error


class BrokerLimitBus(InMemoryBus):
    """The in-memory bus with a broker's message.max.bytes: a larger record (value + key) is refused on produce,
    as Kafka refuses it (MessageSizeTooLargeError)."""

    def __init__(self, max_message_bytes: int) -> None:
        super().__init__()
        self.max_message_bytes = max_message_bytes
        self.refused = 0

    def produce(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = (),
                partition: int | None = None) -> None:
        if len(value) + len(key or b"") > self.max_message_bytes:
            self.refused += 1
            raise ValueError(f"record of {len(value) + len(key or b'')} bytes over message.max.bytes")
        super().produce(topic, value, key, headers, partition)


def test_a_dead_letter_fits_where_its_record_fit_so_it_is_never_refused_forever() -> None:
    """Issue 21: a record at the size limit with a long key failed, and its dead letter (payload, key twice, error)
    was larger than any record the broker takes: refused, retried, refused, forever, the partition held."""

    class Poisoned:
        name = "poisoned"
        input_topics = ["in"]

        def process(self, batch: Sequence[Message]) -> list[Result]:
            return [Result.failed("unusable record: " + "why " * 2000, permanent=True) for _ in batch]

    bus = BrokerLimitBus(max_message_bytes=LIMIT)
    topics = TopicsConfig(dead_letter="dl")
    bus.ensure_topics({"in": 1, "dl": 1})
    big_key = b"k" * 2000
    bus.produce("in", b"v" * (LIMIT - len(big_key)), key=big_key)  # exactly at the broker's limit: accepted
    bus.produce("in", b"after", key=b"small")
    loop = ConsumerLoop(bus, Poisoned(), fast_runtime(max_record_bytes=LIMIT), topics, "g").start()
    try:
        wait_for(loop.drained, "both records dead-lettered and committed past", timeout_s=60)
    finally:
        loop.stop(timeout=30)
    assert bus.refused == 0
    first, second = (records_pb2.DeadLetter.FromString(m.value) for m in read_topic(bus, "dl", 2))
    assert first.offset == 0 and big_key.startswith(first.key) and first.payload and first.error
    assert second.offset == 1 and second.key == b"small" and second.payload == b"after"
