"""Seed rows crafted to crash a reader (issue 21): each becomes a rejected row with its file and line, the rows
around it go through, and an oversized CSV record is never held in memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from pathlib import Path

import pytest
from linksyn.common.seeds import SeedReader, detect_format

from tests.hostile_inputs import CSV_FIELD_OVER_128K, GOOD_ROW, JSONL_ROWS


def _read(path: Path, **kw: int) -> tuple[list, SeedReader]:
    reader = SeedReader([str(path)], **kw)
    seeds = list(reader)
    for s in seeds:  # every seed must serialize (the bus, ids and hashes encode its strings as UTF-8)
        s.SerializeToString()
    return seeds, reader


@pytest.mark.parametrize("name", sorted(JSONL_ROWS))
def test_a_hostile_jsonl_row_is_rejected_with_its_line(name: str, tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    good = json.dumps(GOOD_ROW)
    path.write_text(f"{good}\n{JSONL_ROWS[name]}\n{good}\n", encoding="utf-8")
    seeds, reader = _read(path)
    assert len(seeds) == 2
    assert [(r.line, r.path) for r in reader.rejected] == [(2, str(path))]
    reason = reader.rejected[0].reason
    assert any(word in reason for word in ("nested deeper", "surrogate", "digits")), reason


@pytest.mark.parametrize("name", sorted(JSONL_ROWS))
def test_format_detection_reads_past_a_hostile_first_row(name: str, tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text(f"{JSONL_ROWS[name]}\n" + json.dumps({"problem": "p", "solution": "s", "level": "Level 2"}) + "\n")
    assert detect_format(path) == "math"
    seeds, reader = _read(path)
    assert len(seeds) == 1 and [r.line for r in reader.rejected] == [1]


def test_a_csv_field_over_128_kib_in_the_first_row_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big_test.csv"
    path.write_text(f'"{CSV_FIELD_OVER_128K}",a,b,c,d,A\nq,a,b,c,d,B\n', encoding="utf-8")
    assert detect_format(path) == "mmlu"
    seeds, reader = _read(path)
    assert [s.answer for s in seeds] == ["A. a", "B. b"] and reader.rejected == []


def test_a_csv_field_over_the_row_limit_is_rejected_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "big_test.csv"
    field = "y\n" * 700  # a quoted field over many lines: the next record starts after it
    path.write_text(f'q,a,b,c,d,A\n"{field}",a,b,c,d,A\nq,a,b,c,d,C\n', encoding="utf-8")
    seeds, reader = _read(path, max_row_bytes=1024)
    assert [s.answer for s in seeds] == ["A. a", "C. c"]
    assert [(r.line, r.reason) for r in reader.rejected] == [(2, "row is 1412 bytes, over the limit of 1024")]  # in the file
    assert seeds[1].source.endswith(":703")


def test_a_60_mb_csv_row_is_rejected_without_being_held(tmp_path: Path) -> None:
    path = tmp_path / "huge_test.csv"
    with open(path, "wb") as f:
        f.write(b"q,a,b,c,d,A\n")
        f.write(b",".join([b'"' + b"z" * 950_000 + b'"'] * 64) + b"\n")  # 60 MB of fields under the row limit each
        f.write(b"q,a,b,c,d,D\n")
    tracemalloc.start()
    try:
        seeds, reader = _read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [s.answer for s in seeds] == ["A. a", "D. d"]
    assert [r.line for r in reader.rejected] == [2] and "over the limit of 1000000" in reader.rejected[0].reason
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while reading a 60 MB row"


@pytest.mark.parametrize(
    "text",
    [
        'a,b\r\n"c\r\nd",e\r\n',  # CRLF, a quoted line end
        'a,"b""c",d\n"x"y"z,w\n',  # doubled quotes; a quote after a closing quote is literal
        'a"b,c\nd,e\n',  # a quote inside an unquoted field is literal
        "a,b\rc,d\r",  # old Mac line ends
        '\n\n"",x\n',  # blank lines, an empty quoted field
        '"never closed,\nstill,in\n',  # an unterminated quote runs to the end
    ],
)
def test_csv_records_are_the_records_csv_reader_sees(text: str) -> None:
    from linksyn.common.seeds.csv_records import csv_records

    expected = []
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        if row:
            expected.append((line, row))
    got = [(r.line, next(csv.reader(io.StringIO(r.data.decode(), newline=""))))
           for r in csv_records(io.BytesIO(text.encode()), 1000)]
    assert got == expected
