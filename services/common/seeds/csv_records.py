"""Splitting a CSV file into records in bounded memory, where `csv.reader` would split it.

`csv.reader` reads a whole record before anyone can look at its size: a 60 MB row (one long line, or a quoted field
that runs over many lines) is parsed and held whole, and a field over `csv.field_size_limit()` raises `csv.Error`
mid-file. Here the bytes of a file are read in chunks of at most `max_row_bytes + 1`, a record's bytes are kept only
while they fit the limit, and an oversized record is drained to its end without keeping it. Record ends follow
the `csv` module's state machine for its default (excel) dialect, so the records are those `csv.reader` would see:
a record ends at a line end (\\r\\n, \\n or \\r) outside a quoted field; a quote opens a quoted field only at the
start of a field; inside one, a doubled quote is a literal quote; after its closing quote, or inside a field that
did not start with one, a quote is a literal character.

Quotes, commas and line ends are ASCII, and no byte of a multi-byte UTF-8 character equals one of them, so the
split works on the raw bytes (decoding happens per record); runs without quotes and the insides of quoted fields
are each one regular-expression match, so the Python work is per quoted field, not per byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Iterator

CHUNK_BYTES = 1 << 20
"""Largest read at once (also while draining an oversized record)."""

# Possessive (Python >= 3.11): csv's state machine never backtracks, and neither may these.
_PLAIN = re.compile(rb'[^"\r\n]*+')
"""Bytes outside quoted fields up to the next quote or line end (commas only move the field start)."""
_QUOTED = re.compile(rb'[^"]*+(?:""[^"]*+)*+')
"""The inside of a quoted field up to its closing quote (or a lone quote at the end of the read)."""

_FIELD_START, _IN_FIELD, _IN_QUOTES, _QUOTE_IN_QUOTES = range(4)


@dataclass(frozen=True)
class CsvRecord:
    """One record of a CSV file."""

    line: int
    """1-based line where the record starts."""
    size: int
    """Bytes of the record, its final line end excluded."""
    data: bytes | None
    """The record's bytes, None when `size` is over the reader's limit (they were not kept)."""


def _line_ends(seg: bytes) -> int:
    return seg.count(b"\n") + seg.count(b"\r") - seg.count(b"\r\n")


def csv_records(f: BinaryIO, max_row_bytes: int) -> Iterator[CsvRecord]:
    """The non-blank records of the CSV file open in binary mode as `f` (a UTF-8 byte order mark at its start is
    skipped). Memory held: one record of at most `max_row_bytes` bytes plus one read of at most that much."""
    read_size = min(max_row_bytes + 1, CHUNK_BYTES)
    head = f.read(3)
    pending = b"" if head == b"\xef\xbb\xbf" else head
    line = 1  # line of the next unconsumed byte
    prev_cr = False  # the last consumed byte was '\r': a '\n' right after it ends the same line
    start_line = 1
    kept: list[bytes] = []
    size = 0  # bytes of the record so far
    state = _FIELD_START
    while True:
        chunk = pending + f.readline(read_size)
        pending = b""
        if not chunk:
            if size:
                yield CsvRecord(start_line, size, b"".join(kept) if size <= max_row_bytes else None)
            return
        if size == 0 and chunk.endswith(b"\n") and b'"' not in chunk:
            # The common case: whole one-line records without quotes.
            body = len(chunk) - (2 if chunk.endswith(b"\r\n") else 1)
            if b"\r" not in chunk[:body] and b"\n" not in chunk[:body]:
                if prev_cr and chunk == b"\n":  # the end of a '\r\n' split across two reads
                    prev_cr = False
                    continue
                if body:
                    yield CsvRecord(line, body, chunk if body <= max_row_bytes else None)
                line += 1
                prev_cr = False
                start_line = line
                continue
        pos = 0  # start of the record's part in this chunk
        at = 0  # scan position
        n = len(chunk)
        while at < n:
            if state == _IN_QUOTES:
                at = _QUOTED.match(chunk, at).end()
                if at == n:
                    break
                state, at = _QUOTE_IN_QUOTES, at + 1  # a closing quote, unless a quote follows (next read)
                continue
            if state == _QUOTE_IN_QUOTES:
                c = chunk[at]
                if c == 34:  # a doubled quote split across two reads
                    state, at = _IN_QUOTES, at + 1
                    continue
                if c not in (10, 13):  # after the closing quote the field goes on, its quotes literal
                    state = _IN_FIELD
                    continue
            else:
                run_end = _PLAIN.match(chunk, at).end()
                if run_end > at:
                    state = _FIELD_START if chunk[run_end - 1] == 44 else _IN_FIELD
                    at = run_end
                if at == n:
                    break
                if chunk[at] == 34:  # '"' opens a quoted field at the start of a field, else it is literal
                    if state == _FIELD_START:
                        state = _IN_QUOTES
                    at += 1
                    continue
            # A line end outside quotes: the record ends.
            end = at + (2 if chunk.startswith(b"\r\n", at) else 1)
            piece = chunk[pos:at]
            body = size + len(piece)
            if body:
                if body <= max_row_bytes:
                    kept.append(piece)
                yield CsvRecord(start_line, body, b"".join(kept) if body <= max_row_bytes else None)
            seg = chunk[pos:end]
            line += _line_ends(seg) - (1 if prev_cr and seg.startswith(b"\n") else 0)
            prev_cr = seg.endswith(b"\r")
            kept, size, state, start_line = [], 0, _FIELD_START, line
            pos = at = end
        rest = chunk[pos:]
        if rest:
            size += len(rest)
            if size <= max_row_bytes:
                kept.append(rest)
            else:
                kept = []
            line += _line_ends(rest) - (1 if prev_cr and rest.startswith(b"\n") else 0)
            prev_cr = rest.endswith(b"\r")
