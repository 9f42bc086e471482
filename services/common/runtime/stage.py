"""What a service gives the consumer loop: a `Stage` that turns a batch of input records into output records.

The loop (linksyn.common.runtime.loop) owns everything about transport: polling, batching, concurrency, retries,
dead letters, in-order commits, metrics and shutdown. A Stage only decodes, calls its domain code and encodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Protocol, Sequence, TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from linksyn.common.bus.base import Message, OutRecord, TopicPartition


class PermanentError(Exception):
    """A record that can never succeed (malformed, oversized, fails validation): dead-letter it without retrying."""


@dataclass
class Result:
    """The outcome of one input record.

    Success: `error is None`; `outputs` are produced (possibly none, e.g. a filtered item) before the input's
    offset counts as done. Failure: `error` says why; the loop retries the record alone (with backoff) unless
    `permanent`, and after `max_attempts` sends it to the dead-letter topic with this error.
    """

    outputs: list[OutRecord] = field(default_factory=list)
    error: str | None = None
    permanent: bool = False

    @classmethod
    def ok(cls, *outputs: OutRecord) -> "Result":
        return cls(outputs=list(outputs))

    @classmethod
    def failed(cls, error: str, permanent: bool = False) -> "Result":
        return cls(error=error, permanent=permanent)


class MalformedRecord(PermanentError, ValueError):
    """An input record that can never be processed (it does not parse, or fails its stage's validation): dead-lettered
    at once with this message. `reason` is a short code for metrics labels ("undecodable", "no_kps", ...)."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


M = TypeVar("M", bound=ProtoMessage)


def protobuf_decoder(record_type: type[M], check: Callable[[M], None] | None = None) -> Callable[[bytes], M]:
    """The decoder of a topic's records: bytes -> a `record_type` message, MalformedRecord("undecodable") when the
    bytes are not one, and whatever `check` raises (MalformedRecord, or ValueError) when the message is unusable."""
    name = record_type.DESCRIPTOR.name

    def decode(value: bytes) -> M:
        record = record_type()
        try:
            record.ParseFromString(value)
        except DecodeError as e:
            raise MalformedRecord(f"malformed {name} protobuf ({len(value)} bytes): {e}", "undecodable") from None
        if check is not None:
            check(record)
        return record

    return decode


@dataclass
class DecodedBatch:
    """A batch decoded record by record: `records[k]` came from `batch[slots[k]]`; `failed` maps the index of every
    record that did not decode to its permanent failure (malformed input is dead-lettered, never retried) and
    `reasons` to the short reason code of that failure."""

    records: list
    slots: list[int]
    failed: dict[int, Result]
    reasons: dict[int, str] = field(default_factory=dict)


def decode_batch(batch: Sequence[Message], decode: Callable[[bytes], object]) -> DecodedBatch:
    """Decode each message's value with `decode` (every stage's one way to read its input); a ValueError marks
    that record alone as permanently failed, its dead letter saying "<reason code>: <message>" (the code of a
    MalformedRecord, else "invalid"), so dead letters group by what was wrong."""
    return decode_messages(batch, lambda msg: decode(msg.value))


def decode_messages(batch: Sequence[Message], decode: Callable[[Message], object]) -> DecodedBatch:
    """`decode_batch` for a decoder that reads the whole message: its headers (a content-type) or where it came
    from, besides its value."""
    out = DecodedBatch([], [], {})
    for i, msg in enumerate(batch):
        try:
            out.records.append(decode(msg))
            out.slots.append(i)
        except ValueError as e:
            reason = getattr(e, "reason", "invalid")
            out.failed[i] = Result.failed(f"{reason}: {e}", permanent=True)
            out.reasons[i] = reason
    return out


class Stage(Protocol):
    """A service's processing step, as the consumer loop sees it."""

    name: str
    """Service name: consumer group suffix, metrics label, DeadLetter.service."""

    input_topics: Sequence[str]
    """Topics this stage consumes."""

    def process(self, batch: Sequence[Message]) -> list[Result]:
        """One Result per message, in order. May run on a worker thread, concurrently with other batches
        unless `concurrent_batches` is False. An exception fails the whole batch: each record is then retried."""
        ...


class StreamingStage(Protocol):
    """A Stage whose records finish one by one (each an LLM request of its own): the loop calls `process_stream`
    instead of `process`, and produces a record's outputs and counts it done as soon as its Result is yielded, while
    the rest of the batch is still being worked on. Commits stay in order (the OffsetTracker never passes an
    unfinished record), so at-least-once, dead letters and shutdown behave as for `process`: a record that was
    yielded is finished; one that was not when the stream ended (or raised) fails with the batch, and a record
    still unfinished at shutdown is handed back uncommitted."""

    name: str
    input_topics: Sequence[str]

    def process_stream(self, batch: Sequence[Message]) -> Iterator[tuple[int, Result]]:
        """(index in `batch`, Result) for every record, each exactly once, in the order they finish. May run on a
        worker thread, concurrently with other batches unless `concurrent_batches` is False. An exception fails
        the records not yielded yet (each is then retried alone)."""
        ...


class StageHooks(Protocol):
    """Optional extras a Stage may define (the loop calls them if present)."""

    concurrent_batches: bool
    """False if process() must not run on two batches at once (stateful stages: graph, sink)."""

    def committable(self, done: Mapping[TopicPartition, int]) -> Mapping[TopicPartition, int]:
        """Given the next offsets whose records are all done, return those safe to commit now.
        A stage whose output is durable only at checkpoints (graph snapshots, sink shards) returns the offsets
        of its last checkpoint; the default commits everything done."""
        ...

    def tick(self) -> None:
        """Called from the loop thread about once a second: periodic work (snapshots, flushing shards)."""
        ...

    def on_assign(self, partitions: set[TopicPartition]) -> None:
        """Partitions given to this member (a stage with state per partition may prepare it; keep it quick: it may
        run on the bus's IO thread, so load state lazily, when the first record arrives)."""
        ...

    def on_revoke(self, partitions: set[TopicPartition]) -> None:
        """Partitions taken away (or lost), after the loop committed what `committable` allowed on them: forget their
        uncommitted state, which their next owner rebuilds from the records redelivered to it. Records of these
        partitions may still reach `process` (batches dispatched before the revoke); their results are ignored."""
        ...

    def close(self) -> None:
        """Called once after the last batch finished, before the final commit (flush state there)."""
        ...
