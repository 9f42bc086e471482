"""decode_batch, decode_messages and protobuf_decoder: the one way every stage decodes its input, record by record."""

from __future__ import annotations

import pytest

from linksyn.common.bus.base import Message
from linksyn.common.runtime.stage import (
    MalformedRecord,
    PermanentError,
    decode_batch,
    decode_messages,
    protobuf_decoder,
)
from linksyn.v1 import records_pb2


def _decode_int(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"not an integer: {value!r}") from None


def test_decode_batch_keeps_good_records_with_their_slots_and_fails_bad_ones_permanently():
    batch = [Message("t", 0, i, None, v) for i, v in enumerate([b"1", b"x", b"3", b"", b"5"])]
    decoded = decode_batch(batch, _decode_int)
    assert decoded.records == [1, 3, 5]
    assert decoded.slots == [0, 2, 4]
    assert sorted(decoded.failed) == [1, 3]
    assert all(r.permanent for r in decoded.failed.values())
    # A plain ValueError is reason "invalid"; the dead letter leads with the reason, so dead letters group by it.
    assert decoded.failed[1].error == "invalid: not an integer: b'x'"
    assert decoded.reasons == {1: "invalid", 3: "invalid"}


def test_decode_batch_of_nothing():
    decoded = decode_batch([], _decode_int)
    assert (decoded.records, decoded.slots, decoded.failed) == ([], [], {})


def _check_path(path: records_pb2.WalkPath) -> None:
    if not path.id:
        raise MalformedRecord("WalkPath without an id", "no_id")


def test_protobuf_decoder_parses_checks_and_names_what_is_wrong():
    decode = protobuf_decoder(records_pb2.WalkPath, _check_path)
    good = records_pb2.WalkPath(id="p1", kps=["a"]).SerializeToString()
    assert decode(good).kps == ["a"]
    with pytest.raises(MalformedRecord, match=r"malformed WalkPath protobuf \(4 bytes\)") as e:
        decode(b"\xff\xff\xff\xff")
    assert e.value.reason == "undecodable" and isinstance(e.value, (ValueError, PermanentError))
    with pytest.raises(MalformedRecord, match="without an id") as e:
        decode(records_pb2.WalkPath(kps=["a"]).SerializeToString())
    assert e.value.reason == "no_id"
    batch = [Message("paths", 0, i, None, v) for i, v in enumerate([good, b"\xff\xff\xff\xff", b""])]
    decoded = decode_batch(batch, decode)
    assert decoded.slots == [0] and decoded.reasons == {1: "undecodable", 2: "no_id"}
    assert decoded.failed[2].error == "no_id: WalkPath without an id"


def test_decode_messages_hands_the_decoder_the_whole_message():
    def decode(msg: Message) -> str:
        kind = msg.header("kind")
        if kind is None:
            raise MalformedRecord(f"record {msg.offset} has no kind header", "no_kind")
        return f"{kind.decode()}:{msg.value.decode()}@{msg.offset}"

    batch = [Message("t", 0, 0, None, b"a", headers=(("kind", b"x"),)), Message("t", 0, 1, None, b"b")]
    decoded = decode_messages(batch, decode)
    assert decoded.records == ["x:a@0"] and decoded.slots == [0]
    assert decoded.failed[1].error == "no_kind: record 1 has no kind header" and decoded.reasons == {1: "no_kind"}
