"""Seeds on the seeds topic from any producer (linksyn.common.seeds.wire): Seed protobuf or JSON, told apart by the
content-type header or the bytes, bare or in Confluent schema-registry framing; JSON seeds get exactly the JSONL
reader's fields, validation and messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from linksyn.common.ids import content_id
from linksyn.common.runtime.stage import MalformedRecord
from linksyn.common.seeds.readers import RejectedRow, read_jsonl
from linksyn.common.seeds.wire import REASONS, content_type, decode_seed_value
from linksyn.v1.records_pb2 import Seed

SOURCE = "linksyn.seeds:2:17"
PROTO = Seed(id=content_id("What is 2 + 2?", "4"), question="What is 2 + 2?", answer="4", source="push:1",
             difficulty=1, lang="en")
ROW = {"question": "Why is the sky blue?", "answer": "Rayleigh scattering", "subject": "physics",
       "difficulty": "Level 2", "origin": {"team": "data"}}
JSON_BYTES = json.dumps(ROW).encode()


def confluent(schema_id: int, payload: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def failure(value: bytes | None, media_type: str | None = None) -> MalformedRecord:
    with pytest.raises(MalformedRecord) as e:
        decode_seed_value(value, media_type, SOURCE)
    assert e.value.reason in REASONS
    return e.value


def reader_result(tmp_path: Path, line: bytes) -> Seed | RejectedRow:
    path = tmp_path / "one.jsonl"
    path.write_bytes(line + b"\n")
    [got] = list(read_jsonl(path, "jsonl", 1_000_000))
    return got


def test_a_json_seed_is_the_seed_the_jsonl_reader_makes_of_the_same_line(tmp_path: Path):
    from_file = reader_result(tmp_path, JSON_BYTES)
    from_topic = decode_seed_value(JSON_BYTES, "application/json", SOURCE)
    assert from_topic.source == SOURCE and from_file.source == "one.jsonl:1"  # where it came from, if the row says not
    from_file.source = from_topic.source = ""
    assert from_topic == from_file
    assert from_topic.id == content_id(ROW["question"], ROW["answer"]) and from_topic.difficulty == 2
    assert dict(from_topic.meta) == {"origin": '{"team": "data"}'}
    assert decode_seed_value(json.dumps({**ROW, "source": "crm"}).encode(), None, SOURCE).source == "crm"


@pytest.mark.parametrize("line, reason", [
    (b'{"question": "q"}', "invalid_seed"),
    (b'{"question": "  ", "answer": "a"}', "invalid_seed"),
    (b'{"question": ["q"], "answer": "a"}', "invalid_seed"),
    (b'{"question": "q", "answer": "a", "difficulty": 9}', "invalid_seed"),
    (b'{"question": "q", "answer": "a", "difficulty": true}', "invalid_seed"),
    (b'{"question": "q", "answer": "a", "meta": [1]}', "invalid_seed"),
    (b'["q", "a"]', "invalid_seed"),
    (b'{"question": "q", "answer": "a",}', "invalid_json"),
    (b'{"question": "q\xff", "answer": "a"}', "invalid_json"),
    (b'{"question": "q", "answer": ' + b"1" * 5000 + b"}", "invalid_json"),  # over Python's integer digit limit
    (b"[" * 100_000, "invalid_json"),  # nested deeper than the stack
])
def test_a_bad_json_seed_fails_with_the_jsonl_readers_message(tmp_path: Path, line: bytes, reason: str):
    rejected = reader_result(tmp_path, line)
    assert isinstance(rejected, RejectedRow)
    e = failure(line, "application/json")
    assert (e.reason, str(e)) == (reason, rejected.reason)


def test_the_content_type_header_decides_in_any_case_and_with_parameters():
    assert content_type([("Content-Type", b"application/JSON; charset=utf-8")]) == "application/json"
    assert content_type([("trace", b"x")]) is None
    assert content_type([("content-type", b"text/plain"), ("CONTENT-TYPE", b"application/json")]) == "application/json"
    for media_type in ("application/json", "text/json", "application/vnd.acme.seed+json"):
        assert decode_seed_value(JSON_BYTES, media_type, SOURCE).question == ROW["question"]
    for media_type in ("application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf"):
        assert decode_seed_value(PROTO.SerializeToString(), media_type, SOURCE) == PROTO
    # Declared one way, written the other: the header is believed and the message says what is wrong.
    e = failure(JSON_BYTES, "application/x-protobuf")
    assert e.reason == "undecodable" and str(e).startswith("malformed Seed protobuf")
    assert failure(PROTO.SerializeToString(), "application/json").reason == "invalid_json"
    e = failure(JSON_BYTES, "text/csv")
    assert e.reason == "unsupported_content_type"
    assert "unsupported content-type 'text/csv': expected a JSON object" in str(e) and "linksyn.v1.Seed" in str(e)


@pytest.mark.parametrize("media_type", [None, "application/octet-stream", ""])
def test_without_a_telling_header_the_bytes_decide(media_type):
    assert decode_seed_value(PROTO.SerializeToString(), media_type, SOURCE) == PROTO
    assert decode_seed_value(JSON_BYTES, media_type, SOURCE).question == ROW["question"]
    for dressed in (b"\xef\xbb\xbf" + JSON_BYTES, b"\n  " + JSON_BYTES + b"\n"):
        assert decode_seed_value(dressed, media_type, SOURCE).question == ROW["question"]
    # A Seed whose 123-character id makes it start with "\n{" (Seed.id's tag, then the length 0x7B) is a protobuf.
    odd = Seed(id="x" * 123, question="q", answer="a")
    assert odd.SerializeToString()[:2] == b"\n{"
    assert decode_seed_value(odd.SerializeToString(), media_type, SOURCE) == odd


def test_a_record_that_is_neither_says_what_was_expected():
    for value in (b"hello, world", b"[1, 2]", b"\xff\xfe\x00junk"):
        e = failure(value)
        assert e.reason == "undecodable", value
        assert str(e).startswith("neither a JSON object nor a Seed protobuf: malformed Seed protobuf")
        assert "expected a JSON object in the canonical seed schema" in str(e) and "linksyn.v1.Seed protobuf" in str(e)
    e = failure(b"")
    assert e.reason == "empty" and "tombstone" in str(e) and "expected a JSON object" in str(e)
    assert failure(None, "application/json").reason == "empty"


def test_confluent_framing_is_unwrapped_for_json_and_protobuf():
    assert decode_seed_value(confluent(7, JSON_BYTES), None, SOURCE).question == ROW["question"]
    assert decode_seed_value(confluent(7, JSON_BYTES), "application/json", SOURCE).question == ROW["question"]
    proto = PROTO.SerializeToString()
    # Message indexes: [0] is written as the single byte 0; [1, 2] as count 2 then 1, 2, all zigzag varints.
    for indexes in (b"\x00", b"\x04\x02\x04", b"\x02\x80\x01"):
        assert decode_seed_value(confluent(123456, indexes + proto), None, SOURCE) == PROTO
        assert decode_seed_value(confluent(9, indexes + proto), "application/x-protobuf", SOURCE) == PROTO


def test_bad_confluent_framing_is_named():
    e = failure(b"\x00\x00\x01")
    assert e.reason == "bad_framing" and "record of 3 bytes starts with the Confluent magic byte 0" in str(e)
    e = failure(confluent(5, b"\x04\x82"))  # two indexes announced, the first one cut short
    assert e.reason == "bad_framing" and "message indexes are cut short" in str(e)
    e = failure(confluent(5, b"\x01"))  # a negative count
    assert e.reason == "bad_framing"
    # An Avro payload (what the Avro serializer writes: here a string field, zigzag length then bytes) is not read.
    e = failure(confluent(42, b"\x02\x0ehello, Avro!"))
    assert e.reason == "undecodable"
    assert "in Confluent framing (schema id 42)" in str(e) and "Avro is not read" in str(e)


def test_push_headers_name_protobuf():
    from linksyn.common.seeds.wire import PROTOBUF_HEADERS

    assert decode_seed_value(PROTO.SerializeToString(), content_type(PROTOBUF_HEADERS), SOURCE) == PROTO

