"""A second, independent Kafka client against real linksyn services: confluent-kafka (librdkafka, not kafka-python)
produces JSON seeds (with and without keys, headers and Confluent framing, some malformed) into a real broker while
`linksyn serve extractor` and `linksyn serve sink` run as processes; it reads the annotated seeds, the dead letters
and the sink's JSON dataset topic back. The README's examples ("Producing seeds from your own systems") run here as
written, with only the bootstrap address changed to this test's broker."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from linksyn.cli import schema_document
from linksyn.common.ids import content_id
from linksyn.synth.synthesis import synth_qa_id
from linksyn.v1 import records_pb2

from tests.system.cluster import Cluster

try:
    import confluent_kafka
except ImportError:
    if os.environ.get("CI") == "true":  # CI installs the test extra: its absence there is a failure
        raise
    pytest.skip("confluent-kafka (the test extra) is not installed: pip install -e '.[test]'", allow_module_level=True)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
KEPT_TOPIC = "linksyn.kept-qa"
JSON = {"content-type": "application/json"}
FAST_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
"""librdkafka group timings for the test's own readers: Tansu forms a group in ~3 s with these, ~23 s without."""


def readme_examples() -> list[str]:
    """The Python code blocks of the README section "Producing seeds from your own systems"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Producing seeds from your own systems", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def framed(schema_id: int, payload: bytes) -> bytes:
    """Confluent schema-registry framing: magic byte 0, the 4-byte schema id, the payload."""
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def seed_json(question: str, answer: str, **fields: Any) -> bytes:
    return json.dumps({"question": question, "answer": answer, **fields}).encode()


PROTO_SEED = records_pb2.Seed(
    id=content_id("State Newton's second law of motion.", "F = m a"), question="State Newton's second law of motion.",
    answer="Force equals mass times acceleration, F = m a", subject="high_school_physics", lang="en",
)
GOOD: dict[str, tuple[bytes | None, bytes, dict[str, str] | None]] = {
    # question -> (key, value, headers)
    "Which gas do plants absorb from the air during photosynthesis?": (
        b"photo-1", seed_json("Which gas do plants absorb from the air during photosynthesis?", "Carbon dioxide",
                              subject="high_school_biology", difficulty=2), JSON),
    "What is the derivative of the sine function with respect to x?": (
        None, seed_json("What is the derivative of the sine function with respect to x?", "The cosine function",
                        subject="college_mathematics", difficulty="Level 4", origin={"system": "lms"}), None),
    "In which year did the Second World War end in Europe?": (
        b"hist-1945", framed(7, seed_json("In which year did the Second World War end in Europe?", "1945",
                                          subject="high_school_world_history")), JSON),
    PROTO_SEED.question: (PROTO_SEED.id.encode(), framed(8, b"\x00" + PROTO_SEED.SerializeToString()), None),
}
BAD: dict[bytes, tuple[bytes | None, dict[str, str] | None, str]] = {
    # key -> (value, headers, how its dead letter's error starts)
    b"bad-no-answer": (b'{"question": "What is the capital of France?"}', JSON, "invalid_seed: missing 'answer'"),
    b"bad-json": (b'{"question": "What is 2 + 2?", "answer": 4', JSON, "invalid_json: invalid JSON: Expecting"),
    b"bad-grade": (seed_json("What is a prime number?", "A number with two divisors", difficulty=9), None,
                   "invalid_seed: difficulty must be between 0 and 5, got 9"),
    b"bad-type": (b"question,answer\nWhat is 2 + 2?,4\n", {"content-type": "text/csv"},
                  "unsupported_content_type: unsupported content-type 'text/csv': expected a JSON object"),
    b"bad-bytes": (b"\x0f\xff these bytes are neither", None,
                   "undecodable: neither a JSON object nor a Seed protobuf: malformed Seed protobuf"),
    b"bad-avro": (framed(3, b"\x02\x0ehello, Avro!"), None,
                  "undecodable: neither a JSON object nor a Seed protobuf in Confluent framing (schema id 3)"),
    b"bad-tombstone": (None, None, "empty: empty record"),
}


def synth_qa(question: str, answer: str) -> records_pb2.SynthQA:
    return records_pb2.SynthQA(
        id=synth_qa_id(question, answer), question=question, answer=answer, kps=["photosynthesis"],
        discipline="biology", difficulty=2, path_id="path-1", source_seed_ids=["s1", "s2"], models=["m"],
        prompt_version="link-v1", mode=1, lang="en",
    )


QAS = [
    synth_qa("Why do leaves look green even though chlorophyll absorbs light for photosynthesis?",
             "Chlorophyll reflects green light and absorbs red and blue light."),
    synth_qa("Which product of photosynthesis leaves the leaf through the stomata during the day?", "Oxygen."),
    synth_qa("How does the rate of photosynthesis change when carbon dioxide becomes scarce?",
             "It falls, since carbon dioxide is a reactant."),
]
DUPLICATE = synth_qa(QAS[0].question.upper(), "The same question again, shouted.")  # the sink drops it


def read(bootstrap: str, topics: list[str], until: Any, timeout: float = 120) -> list[Any]:
    """Records of `topics` (from the start, in a fresh group) until `until(records)` holds or `timeout` passes."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:8]}",
                                         "auto.offset.reset": "earliest", **FAST_GROUP})
    consumer.subscribe(topics)
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(got) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg)
    finally:
        consumer.close()
    return got


def test_seeds_and_the_dataset_through_confluent_kafka(tmp_path: Path):
    produce_seeds, follow_dataset = readme_examples()
    overrides = {
        "extractor": {"mode": "keyphrase", "keyphrase_tokens": "static", "kp_merge": False},
        "sink": {"kept_topic": KEPT_TOPIC, "formats": ["jsonl"]},
    }
    with Cluster(tmp_path, llm_spec="unused", overrides=overrides) as cluster:
        cluster.start("extractor", "sink")
        assert cluster.broker is not None
        bootstrap = cluster.broker.bootstrap
        topics = cluster.topics

        # The README's reader of the dataset topic, as written, from now on (its group joins meanwhile).
        readme_rows: list[dict] = []
        example: dict[str, Any] = {"__name__": "readme_example"}
        exec(follow_dataset, example)  # defines follow_dataset; its __main__ part does not run here

        class Enough(Exception):
            pass

        def collect(row: dict) -> None:
            readme_rows.append(row)
            if len(readme_rows) >= len(QAS):
                raise Enough

        def follow() -> None:
            try:
                example["follow_dataset"](collect, bootstrap=bootstrap, group="readme-team")
            except Enough:
                pass

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()

        # The README's producer, as written.
        readme = {"__name__": "readme_example"}
        exec(produce_seeds.replace('"localhost:9092"', repr(bootstrap)), readme)
        readme_questions = {s["question"] for s in readme["seeds"]}

        producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        failures: list[Any] = []

        def produce(topic: str, value: bytes | None, key: bytes | None, headers: dict[str, str] | None,
                    **where: int) -> None:
            producer.produce(topic, value, key=key, headers=headers,
                             on_delivery=lambda err, msg: err and failures.append(err), **where)

        for key, value, headers in GOOD.values():
            produce(topics["seeds"], value, key, headers)
        for key, (value, headers, _) in BAD.items():
            produce(topics["seeds"], value, key, headers)
        for qa in [*QAS, DUPLICATE]:  # one partition: the duplicate comes after the QA it repeats
            produce(topics["synth_qa"], qa.SerializeToString(), qa.id.encode(),
                    {"content-type": "application/x-protobuf"}, partition=0)
        assert producer.flush(30) == 0 and not failures, failures

        expected = readme_questions | set(GOOD)
        records = read(bootstrap, [topics["seed_kps"], topics["dead_letter"], KEPT_TOPIC], lambda got: (
            sum(m.topic() == topics["seed_kps"] for m in got) >= len(expected)
            and sum(m.topic() == topics["dead_letter"] for m in got) >= len(BAD)
            and sum(m.topic() == KEPT_TOPIC for m in got) >= len(QAS)))
        follower.join(timeout=60)
        cluster.check_alive()
        del producer, readme  # librdkafka handles closed before the broker stops (else they log reconnects)

    by_topic: dict[str, list[Any]] = {}
    for m in records:
        by_topic.setdefault(m.topic(), []).append(m)

    # Every good seed annotated once, keyed by its id, with the fields its JSON gave it.
    annotated = {}
    for m in by_topic.get(topics["seed_kps"], []):
        a = records_pb2.AnnotatedSeed.FromString(m.value())
        assert m.key() == a.seed.id.encode() and a.kps and a.annotator.startswith("keyphrase")
        annotated[a.seed.question] = a.seed
    assert set(annotated) == expected and len(by_topic[topics["seed_kps"]]) == len(expected)
    crm = annotated["Which organelle produces most of the ATP in a eukaryotic cell?"]
    assert (crm.id, crm.source, crm.meta["ticket"]) == ("crm-4711", "crm", "4711")
    derivative = annotated["What is the derivative of the sine function with respect to x?"]
    assert derivative.difficulty == 4 and derivative.meta["origin"] == '{"system": "lms"}'
    assert re.fullmatch(rf"{re.escape(topics['seeds'])}:\d+:\d+", derivative.source)  # where it was read
    assert derivative.id == content_id(derivative.question, derivative.answer)
    assert annotated[PROTO_SEED.question] == PROTO_SEED

    # Every bad record dead-lettered at once by the extractor, with its reason and its bytes.
    letters = {}
    for m in by_topic.get(topics["dead_letter"], []):
        d = records_pb2.DeadLetter.FromString(m.value())
        letters[m.key()] = d
    assert set(letters) == set(BAD)
    for key, (value, _, error) in BAD.items():
        d = letters[key]
        assert d.error.startswith(error), (key, d.error)
        assert (d.service, d.topic, d.attempts, d.payload) == ("extractor", topics["seeds"], 1, value or b"")

    # The dataset topic: the kept rows, as the JSONL shards hold them, valid under the published schema.
    kept = by_topic.get(KEPT_TOPIC, [])
    assert sorted(m.key() for m in kept) == sorted(qa.id.encode() for qa in QAS)
    assert all(dict(m.headers())["content-type"] == b"application/json" for m in kept)
    validator = Draft202012Validator(json.loads(schema_document("kept-qa")))
    for m in kept:
        validator.validate(json.loads(m.value()))
    shards = sorted((tmp_path / "dataset" / "data" / "jsonl").glob("*.jsonl"))
    assert sorted(m.value() for m in kept) == sorted(line for p in shards for line in p.read_bytes().splitlines())
    assert sorted(r["id"] for r in readme_rows) == sorted(qa.id for qa in QAS)  # the README's reader got them too
