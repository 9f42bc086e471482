"""The extractor stage in the real consumer loop on the in-memory bus, with the openai backend pointed at a real
loopback HTTP server that misbehaves for chosen seeds: bad JSON, a timeout, HTTP 500."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from linksyn.common.bus.memory import InMemoryBus
from linksyn.common.config import RetryConfig, RuntimeConfig, TopicsConfig
from linksyn.common.ids import content_id
from linksyn.common.runtime.loop import ConsumerLoop
from linksyn.extractor.config import ExtractorConfig
from linksyn.extractor.extractor import Extractor
from linksyn.extractor.stage import ExtractorStage
from linksyn.v1.records_pb2 import AnnotatedSeed, DeadLetter, Seed

from tests.extractor.conftest import make_seed

GOOD_REPLY = {"knowledge_points": ["Ohm's laws", "electric current"], "discipline": "Physics",
              "subdiscipline": "electromagnetism", "difficulty": 3}


class MisbehavingChatServer(BaseHTTPRequestHandler):
    """OpenAI-compatible /v1/chat/completions; the seed text chooses the behaviour."""

    calls: list[str] = []
    release = threading.Event()
    """[HOLD] seeds get their reply only once this is set."""

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        user = body["messages"][-1]["content"]
        self.calls.append(user)
        if "[HOLD]" in user:
            self.release.wait(30)
            return self._reply(json.dumps(GOOD_REPLY))
        if "[SLOW]" in user:
            time.sleep(3.0)
            return self._reply("{}")
        if "[ERR500]" in user:
            return self._send(500, {"error": {"message": "injected failure"}})
        if "[BADJSON]" in user:
            return self._reply("Sorry, I cannot produce JSON today.")
        return self._reply("```json\n" + json.dumps(GOOD_REPLY) + "\n```")

    def _reply(self, text: str) -> None:
        self._send(200, {
            "id": "x", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        })

    def _send(self, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass


@pytest.fixture
def chat_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), MisbehavingChatServer)
    server.daemon_threads = True
    MisbehavingChatServer.calls = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _read(bus, topic: str, count: int, timeout_s: float = 60.0):
    c = bus.consumer(f"reader-{uuid.uuid4().hex[:8]}", [topic])
    got = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < count and time.monotonic() < deadline:
            got.extend(c.poll(max_records=100, timeout_s=0.2))
    finally:
        c.close()
    return got


def test_bad_replies_are_retried_then_dead_lettered_and_the_batch_is_unaffected(chat_server):
    from linksyn.common.llm import load_llm
    from linksyn.common.llm.config import LLMConfig

    from linksyn.common.llm.config import FlowConfig

    # Only bad seeds are left after the first batch: their failures in a row would open the endpoint's circuit,
    # which is not what this test is about (tests/common/llm/test_flow.py is).
    llm = load_llm(f"openai:{chat_server}#fake", LLMConfig(request_timeout_s=0.5, retry=RetryConfig(
                   max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02), flow=FlowConfig(circuit_failures=100)))
    cfg = ExtractorConfig(model="unused", kp_merge=False)
    uid = uuid.uuid4().hex[:8]
    topics = TopicsConfig(seeds=f"seeds-{uid}", seed_kps=f"kps-{uid}", dead_letter=f"dl-{uid}")
    bus = InMemoryBus()
    bus.ensure_topics({topics.seeds: 1, topics.seed_kps: 1, topics.dead_letter: 1})
    stage = ExtractorStage(Extractor.from_config(cfg, llm=llm), topics.seeds, topics.seed_kps)
    good = [make_seed(f"What does Ohm's law say about circuit {i}?", "V = IR", "college_physics") for i in range(5)]
    bad = {tag: make_seed(f"Question {tag} about resistors", "R") for tag in ("[BADJSON]", "[SLOW]", "[ERR500]")}
    seeds = good[:2] + list(bad.values()) + good[2:]
    for s in seeds:
        bus.produce(topics.seeds, s.SerializeToString(), key=s.id.encode())
    bus.produce(topics.seeds, b"\xff\xfe not a protobuf", key=b"junk")
    runtime = RuntimeConfig(batch_size=16, batch_wait_s=0.2, commit_interval_s=0.05, workers=2,
                            retry=RetryConfig(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05))
    loop = ConsumerLoop(bus, stage, runtime, topics, group=f"extractor-{uid}").start()
    try:
        outs = _read(bus, topics.seed_kps, len(good))
        dead = _read(bus, topics.dead_letter, len(bad) + 1)
    finally:
        loop.stop(timeout=10)
        llm.close()

    annotated = [AnnotatedSeed.FromString(m.value) for m in outs]
    assert sorted(a.seed.id for a in annotated) == sorted(s.id for s in good)
    assert {m.key for m in outs} == {s.id.encode() for s in good}
    for a in annotated:
        assert a.kps == ["ohm's law", "electric current"]  # repaired from the fenced reply, canonicalised
        assert (a.discipline, a.difficulty) == ("physics", 4)  # trusted label college_physics -> physics, 4
        assert a.prompt_tokens == 100 and a.completion_tokens == 20
        assert a.annotator == "llm:" + llm.model_name + "@extract-v2"

    letters = {Seed.FromString(d.payload).question if d.key != b"junk" else "junk": d
               for d in (DeadLetter.FromString(m.value) for m in dead)}
    assert letters["junk"].attempts == 1 and "malformed Seed protobuf" in letters["junk"].error
    by_tag = {tag: letters[s.question] for tag, s in bad.items()}
    assert by_tag["[BADJSON]"].attempts == 3 and "no JSON object" in by_tag["[BADJSON]"].error
    assert by_tag["[ERR500]"].attempts == 3 and "500" in by_tag["[ERR500]"].error
    assert by_tag["[SLOW]"].attempts == 3 and "tim" in by_tag["[SLOW]"].error.lower()
    assert all(d.service == "extractor" for d in letters.values())
    # Each bad seed was asked for again alone (retries), the good ones once each.
    assert sum("[BADJSON]" in c for c in MisbehavingChatServer.calls) == 3
    assert sum("circuit 0" in c for c in MisbehavingChatServer.calls) == 1


def test_json_seeds_are_annotated_beside_protobuf_ones_and_bad_records_dead_lettered_with_reasons(chat_server):
    """Seeds as other producers write them, through the real loop on the in-memory bus (headers delivered)."""
    from linksyn.common.llm import load_llm

    llm = load_llm(f"openai:{chat_server}#fake")
    uid = uuid.uuid4().hex[:8]
    topics = TopicsConfig(seeds=f"seeds-{uid}", seed_kps=f"kps-{uid}", dead_letter=f"dl-{uid}")
    bus = InMemoryBus()
    bus.ensure_topics({topics.seeds: 2, topics.seed_kps: 1, topics.dead_letter: 1})
    stage = ExtractorStage(Extractor.from_config(ExtractorConfig(model="unused", kp_merge=False), llm=llm),
                           topics.seeds, topics.seed_kps)
    json_type = (("content-type", b"application/json"),)
    proto = make_seed("What does Ohm's law say about a resistor?", "V = IR", "college_physics")
    good = {
        "with key and header": (b"k1", json.dumps({"question": "What is electric current?", "answer": "flow of charge",
                                                   "subject": "college_physics"}).encode(), json_type),
        "without key or header": (None, json.dumps({"id": "mine-1", "question": "What is a volt?",
                                                    "answer": "a unit of potential"}).encode(), ()),
        "protobuf": (proto.id.encode(), proto.SerializeToString(), (("content-type", b"application/x-protobuf"),)),
    }
    bad = {
        "missing answer": (b'{"question": "What is resistance?"}', json_type, "invalid_seed: missing 'answer'"),
        "bad difficulty": (b'{"question": "q", "answer": "a", "difficulty": 7}', (),
                           "invalid_seed: difficulty must be between 0 and 5, got 7"),
        "not JSON": (b'{"question": "q", "answer": ', json_type, "invalid_json: invalid JSON: Expecting value"),
        "wrong type": (b"question,answer", (("content-type", b"text/csv"),), "unsupported_content_type: "),
        "neither": (b"\xff\xfe junk", (), "undecodable: neither a JSON object nor a Seed protobuf"),
    }
    for key, value, headers in good.values():
        bus.produce(topics.seeds, value, key=key, headers=headers)
    for name, (value, headers, _) in bad.items():
        bus.produce(topics.seeds, value, key=name.encode(), headers=headers)
    runtime = RuntimeConfig(batch_size=16, batch_wait_s=0.05, commit_interval_s=0.05)
    loop = ConsumerLoop(bus, stage, runtime, topics, group=f"extractor-{uid}").start()
    try:
        outs = _read(bus, topics.seed_kps, len(good))
        dead = _read(bus, topics.dead_letter, len(bad))
    finally:
        loop.stop(timeout=10)
        llm.close()

    annotated = {a.seed.question: a for a in (AnnotatedSeed.FromString(m.value) for m in outs)}
    assert set(annotated) == {"What is electric current?", "What is a volt?", proto.question}
    current = annotated["What is electric current?"].seed
    assert current.id == content_id("What is electric current?", "flow of charge")
    assert current.source.startswith(f"{topics.seeds}:") and current.subject == "college_physics"
    assert annotated["What is a volt?"].seed.id == "mine-1"
    assert annotated[proto.question].seed == proto
    letters = {m.key.decode(): DeadLetter.FromString(m.value) for m in dead}
    assert set(letters) == set(bad)
    for name, (value, _, error) in bad.items():
        assert letters[name].error.startswith(error), (name, letters[name].error)
        assert letters[name].attempts == 1 and letters[name].payload == value  # malformed: never retried


def test_annotated_seeds_leave_as_their_replies_come_back_not_when_the_batch_ends(chat_server):
    from linksyn.common.llm import load_llm

    llm = load_llm(f"openai:{chat_server}#fake")
    uid = uuid.uuid4().hex[:8]
    topics = TopicsConfig(seeds=f"seeds-{uid}", seed_kps=f"kps-{uid}", dead_letter=f"dl-{uid}")
    bus = InMemoryBus()
    bus.ensure_topics({topics.seeds: 1, topics.seed_kps: 1, topics.dead_letter: 1})
    stage = ExtractorStage(Extractor.from_config(ExtractorConfig(model="unused", kp_merge=False), llm=llm),
                           topics.seeds, topics.seed_kps)
    held = make_seed("Question [HOLD] about capacitors", "C")
    seeds = [held] + [make_seed(f"What does Ohm's law say about circuit {i}?", "V = IR", "college_physics")
                      for i in range(5)]
    for s in seeds:
        bus.produce(topics.seeds, s.SerializeToString(), key=s.id.encode())
    runtime = RuntimeConfig(batch_size=16, batch_wait_s=0.2, commit_interval_s=0.05)
    MisbehavingChatServer.release.clear()
    loop = ConsumerLoop(bus, stage, runtime, topics, group=f"extractor-{uid}").start()
    try:
        first = _read(bus, topics.seed_kps, 5)
        assert len(first) == 5  # out while [HOLD] is still being answered
        deadline = time.monotonic() + 30
        while loop.stats()["in_flight"] > 1 and time.monotonic() < deadline:  # the loop thread settles each
            time.sleep(0.01)
        assert loop.stats()["in_flight"] == 1 and loop.stats()["records_out"] == 5
        assert loop.stats()["batches"] == 0  # all six were one batch, which has not ended
        MisbehavingChatServer.release.set()
        assert len(_read(bus, topics.seed_kps, 6)) == 6
    finally:
        MisbehavingChatServer.release.set()
        loop.stop(timeout=10)
        llm.close()
