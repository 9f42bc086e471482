"""decode_batch: the one way a stage decodes a batch record by record."""

from __future__ import annotations

from linksyn.common.bus.base import Message
from linksyn.common.runtime.stage import decode_batch


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
    assert decoded.failed[1].error == "not an integer: b'x'"


def test_decode_batch_of_nothing():
    decoded = decode_batch([], _decode_int)
    assert (decoded.records, decoded.slots, decoded.failed) == ([], [], {})
