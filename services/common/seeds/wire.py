"""Seeds as records on the seeds topic, however a producer wrote them: linksyn's `Seed` protobuf, or a JSON object
in the canonical seed schema (the JSONL reader's row: schemas/seed.schema.json), either one bare or in Confluent
schema-registry framing.

Which one a record is:
- its `content-type` header (any letter case; parameters such as `; charset=utf-8` ignored) when it has one:
  application/json (or text/json, or any `+json` type) is JSON; application/x-protobuf (or application/protobuf,
  application/vnd.google.protobuf) is protobuf; application/octet-stream says nothing; any other type is refused;
- else its bytes: a JSON object starts with `{` (after an optional UTF-8 BOM and whitespace); a Seed protobuf
  cannot (byte 0x7B would be field 15, which Seed does not have). A record that starts with whitespace and is not
  valid JSON is tried as protobuf too (0x0A, a newline, is also the tag of Seed.id).
- Confluent framing (magic byte 0, then a 4-byte big-endian schema id; a protobuf payload then has its message
  indexes) is recognised by its first byte, which neither bare JSON nor a protobuf can start with. The schema id is
  not looked up (no registry is needed): the payload must be a JSON seed or a `linksyn.v1.Seed`.

A JSON seed goes through the same row conversion as a line of a JSONL seed file (`rows.json_row` then
`rows.canonical_seed`), so it gets the same fields, validation and error messages. A seed without `source` gets
"<topic>:<partition>:<offset>", as a file row gets "<file>:<line>". Every failure is a MalformedRecord whose reason
code says which kind it is (see REASONS), dead-lettered by the consumer loop as "<reason>: <message>".
"""

from __future__ import annotations

from typing import Iterable

from linksyn.common.runtime.stage import MalformedRecord, protobuf_decoder
from linksyn.common.seeds.rows import RowError, canonical_seed, json_row
from linksyn.v1.records_pb2 import Seed

CONTENT_TYPE_HEADER = "content-type"
"""The record header naming the value's format (matched in any letter case)."""
JSON_CONTENT_TYPE = "application/json"
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
PROTOBUF_HEADERS = ((CONTENT_TYPE_HEADER, PROTOBUF_CONTENT_TYPE.encode("ascii")),)
"""The headers `linksyn push` gives each Seed protobuf it produces."""
JSON_TYPES = frozenset({JSON_CONTENT_TYPE, "text/json"})
"""Media types read as JSON (besides any `+json` type)."""
PROTOBUF_TYPES = frozenset({PROTOBUF_CONTENT_TYPE, "application/protobuf", "application/vnd.google.protobuf",
                            "application/x-google-protobuf"})
"""Media types read as a Seed protobuf (besides any `+protobuf` / `+proto` type)."""
UNTYPED = frozenset({"", "application/octet-stream"})
"""Media types that do not say which format: the bytes decide."""

CONFLUENT_MAGIC = 0
CONFLUENT_HEADER_BYTES = 5
"""Magic byte + 4-byte schema id."""
_MAX_MESSAGE_INDEXES = 64
"""Nesting depth of a Confluent message-index path we accept (real schemas nest a few levels)."""

EXPECTED = (
    "expected a JSON object in the canonical seed schema (content-type application/json; `linksyn schema seed`) "
    "or a linksyn.v1.Seed protobuf (content-type application/x-protobuf), bare or in Confluent schema-registry "
    "framing (JSON Schema or Protobuf; Avro is not read)"
)
"""What a seed record may be, as failures say it."""

REASONS = {
    "empty": "the record has no bytes (a null value: a tombstone)",
    "unsupported_content_type": "its content-type header names a format linksyn does not read",
    "bad_framing": "it starts with the Confluent magic byte but its framing is cut short or malformed",
    "invalid_json": "read as JSON (header or bytes), it is not UTF-8 JSON (the JSONL reader's message)",
    "invalid_seed": "valid JSON that is not a seed: not an object, a missing or empty question/answer, a bad field "
                    "(the JSONL reader's message)",
    "undecodable": "read as protobuf, it does not parse as a linksyn.v1.Seed",
}
"""Reason codes of seed records that cannot be read, and what each means (dead letters lead with the code)."""

_parse_protobuf = protobuf_decoder(Seed)
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


def content_type(headers: Iterable[tuple[str, bytes]]) -> str | None:
    """The media type of the last `content-type` header (name in any case), lower case, without parameters;
    None when the record has no such header."""
    found = None
    for name, value in headers:
        if name.lower() == CONTENT_TYPE_HEADER:
            found = value
    if found is None:
        return None
    return found.decode("latin-1").split(";", 1)[0].strip().lower()


def _format_of(media_type: str | None) -> str | None:
    """'json', 'protobuf', or None (the bytes decide), from a media type; MalformedRecord for any other type."""
    if media_type is None or media_type in UNTYPED:
        return None
    if media_type in JSON_TYPES or media_type.endswith("+json"):
        return "json"
    if media_type in PROTOBUF_TYPES or media_type.endswith(("+protobuf", "+proto")):
        return "protobuf"
    raise MalformedRecord(f"unsupported content-type {media_type!r}: {EXPECTED}", "unsupported_content_type")


def _looks_like_json(payload: bytes) -> bool:
    if payload[:1] == b"{":
        return True
    return payload.removeprefix(_BOM).lstrip(_WHITESPACE)[:1] == b"{"


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """The zigzag-encoded varint at data[i:] (Confluent message indexes) and the index after it."""
    shift = raw = 0
    while True:
        if i >= len(data) or shift > 63:
            raise MalformedRecord(
                f"the Confluent protobuf framing's message indexes are cut short or malformed: {EXPECTED}",
                "bad_framing",
            )
        b = data[i]
        i += 1
        raw |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return (raw >> 1) ^ -(raw & 1), i


def _skip_message_indexes(payload: bytes) -> bytes:
    """The protobuf message after the message-index path of Confluent's protobuf framing (a count, then the
    indexes; a count of 0 means [0], the schema's first message type). The path is not checked against a schema."""
    count, i = _varint(payload, 0)
    if not 0 <= count <= _MAX_MESSAGE_INDEXES:
        raise MalformedRecord(
            f"the Confluent protobuf framing has {count} message indexes: {EXPECTED}", "bad_framing"
        )
    for _ in range(count):
        _, i = _varint(payload, i)
    return payload[i:]


def _json_seed(payload: bytes, source: str) -> Seed:
    try:
        row = json_row(payload.removeprefix(_BOM))
    except RowError as e:
        raise MalformedRecord(str(e), "invalid_json") from None
    try:
        return canonical_seed(row, source)
    except RowError as e:
        raise MalformedRecord(str(e), "invalid_seed") from None


def decode_seed_value(value: bytes | None, media_type: str | None, source: str) -> Seed:
    """The Seed in one record's value. `media_type` is its `content_type(headers)` (None: no header), `source` what
    a JSON seed without one gets. MalformedRecord (with a code of REASONS) when the record is not a seed."""
    if not value:
        raise MalformedRecord(f"empty record (no bytes: a null value or tombstone): {EXPECTED}", "empty")
    declared = _format_of(media_type)
    payload = value
    framed = value[0] == CONFLUENT_MAGIC
    if framed:
        if len(value) < CONFLUENT_HEADER_BYTES:
            raise MalformedRecord(
                f"record of {len(value)} bytes starts with the Confluent magic byte 0 but has no 4-byte schema id: "
                f"{EXPECTED}", "bad_framing",
            )
        payload = value[CONFLUENT_HEADER_BYTES:]
    fmt = declared or ("json" if _looks_like_json(payload) else "protobuf")
    if fmt == "json":
        try:
            return _json_seed(payload, source)
        except MalformedRecord as e:
            # Undeclared and starting with whitespace: it may be a Seed protobuf whose first byte is 0x0A (Seed.id).
            if declared or e.reason != "invalid_json" or payload[:1] not in (b" ", b"\t", b"\r", b"\n"):
                raise
            try:
                return _parse_protobuf(payload)
            except MalformedRecord:
                raise e from None
    if framed:
        payload = _skip_message_indexes(payload)
    try:
        return _parse_protobuf(payload)
    except MalformedRecord as e:
        where = f" in Confluent framing (schema id {int.from_bytes(value[1:5], 'big')})" if framed else ""
        if declared:  # the header said protobuf: say what is wrong with it
            raise MalformedRecord(f"{e}{where}", e.reason) from None
        raise MalformedRecord(f"neither a JSON object nor a Seed protobuf{where}: {e}; {EXPECTED}", e.reason) from None
