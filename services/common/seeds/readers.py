"""Reading seed files: format detection and streaming readers that yield `Seed` records.

Every reader streams (JSONL line by line and CSV record by record, each with a bounded buffer, Parquet in record batches, HF datasets
through their memory-mapped Arrow files), so a file of any size reads in constant memory. A row that cannot become
a Seed is skipped and recorded as a `RejectedRow` with its file and line (row number for columnar sources); the
rest goes through.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from linksyn.common.benchmarks import mmlu_subject
from linksyn.common.seeds.csv_records import csv_records
from linksyn.common.seeds.rows import (
    RowError,
    canonical_seed,
    cmmlu_csv_seed,
    gsm8k_seed,
    json_row,
    math_seed,
    mmlu_csv_seed,
    record_seed,
)
from linksyn.v1.records_pb2 import Seed

FORMATS: dict[str, str] = {
    "jsonl": "canonical seed JSONL: {id?, question, answer, subject?, discipline?, difficulty?, source?, lang?}",
    "gsm8k": "GSM8K JSONL: {question, answer ending in '#### n'}",
    "math": "MATH JSONL: {problem, level 'Level k', type, solution}",
    "mmlu": "MMLU CSV without header: question,A,B,C,D,answer letter; subject from '<subject>_dev.csv'",
    "cmmlu": "CMMLU CSV with header ',Question,A,B,C,D,Answer'; subject from '<subject>.csv'",
    "parquet": "Parquet with canonical, MATH or multiple-choice columns",
    "hf": "a Hugging Face `datasets` folder written by save_to_disk (Dataset or DatasetDict)",
}
"""Seed formats linksyn reads, with what each looks like."""

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
# Files picked up when a folder is given; `.json` is left out there because folders of data sets hold
# metadata .json files (dataset_info.json, ...), but an explicitly named .json file is read as JSON Lines.
FOLDER_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet")
DEFAULT_MAX_ROW_BYTES = 1_000_000
DETECT_LINES = 50
CMMLU_HEADER = ["", "Question", "A", "B", "C", "D", "Answer"]


class SeedSourceError(ValueError):
    """A seed path that cannot be read at all (missing, unknown format); the message names the path."""


@dataclass(frozen=True)
class RejectedRow:
    """A row that was skipped, where it was, and why."""

    path: str
    line: int
    """1-based line of a text file (the row's first line), or 1-based row number of a columnar source."""
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class SeedFile:
    """One readable source: a file, or an HF dataset folder, with the format it will be read as."""

    path: Path
    format: str


def is_hf_dataset_dir(path: Path) -> bool:
    """True for a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return path.is_dir() and (
        (path / "dataset_dict.json").is_file()
        or ((path / "state.json").is_file() and (path / "dataset_info.json").is_file())
    )


def _read_line(f: Any, max_bytes: int) -> tuple[bytes, int] | None:
    """The next line of a binary file without its line ending, and the line's size in bytes (ending excluded).

    At most max_bytes + 1 bytes are held in memory: a longer line is drained in chunks and comes back as b""
    with its true size, so the caller can reject it by size. None at end of file.
    """
    line = f.readline(max_bytes + 1)
    if not line:
        return None
    if line.endswith(b"\n") or len(line) <= max_bytes:
        raw = line.rstrip(b"\r\n")
        return raw, len(raw)
    size = len(line)
    while True:
        chunk = f.readline(1 << 20)
        if not chunk:
            return b"", size
        size += len(chunk)
        if chunk.endswith(b"\n"):
            return b"", size - (len(chunk) - len(chunk.rstrip(b"\r\n")))


def _peek_json_objects(path: Path, max_bytes: int) -> Iterator[dict[str, Any]]:
    """The first parseable JSON objects of a JSON Lines file (for format detection)."""
    with open(path, "rb") as f:
        for _ in range(DETECT_LINES):
            got = _read_line(f, max_bytes)
            if got is None:
                return
            try:
                obj = json_row(got[0].removeprefix(b"\xef\xbb\xbf"))
            except ValueError:  # RowError: not JSON, or over a JSON limit
                continue
            if isinstance(obj, dict):
                yield obj


def detect_format(path: Path, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> str:
    """The format of one file or HF dataset folder, from its name and first rows.

    .parquet -> parquet; a save_to_disk folder -> hf; .csv -> cmmlu if its header is ',Question,A,B,C,D,Answer',
    else mmlu; JSON Lines -> math if rows have problem+solution, gsm8k if {question, answer} with '#### n' answers,
    else the canonical jsonl.
    """
    if is_hf_dataset_dir(path):
        return "hf"
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".csv":
        with open(path, "rb") as f:
            record = next(csv_records(f, max_row_bytes), None)
        try:
            first = csv_cells(record.data) if record is not None and record.data is not None else []
        except ValueError:
            first = []
        return "cmmlu" if [c.strip() for c in first] == CMMLU_HEADER else "mmlu"
    if suffix in JSONL_SUFFIXES:
        for obj in _peek_json_objects(path, max_row_bytes):
            if "problem" in obj and "solution" in obj:
                return "math"
            answer = obj.get("answer")
            if set(obj) == {"question", "answer"} and isinstance(answer, str) and "####" in answer:
                return "gsm8k"
            return "jsonl"
        return "jsonl"
    raise SeedSourceError(
        f"cannot tell the seed format of {str(path)!r} from its suffix {suffix!r}; "
        f"pass --format (one of {', '.join(FORMATS)})"
    )


def plan_sources(
    paths: Iterable[str | Path], fmt: str | None = None, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
) -> list[SeedFile]:
    """Expand paths (files, folders of seed files, HF dataset folders) into sources with their formats.

    `fmt` forces one format on every file. Raises SeedSourceError for a missing path, an unknown format, or a
    folder with no seed files, before anything is read.
    """
    if fmt is not None and fmt not in FORMATS:
        raise SeedSourceError(f"unknown seed format {fmt!r}; known formats: {', '.join(FORMATS)}")
    sources: list[SeedFile] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise SeedSourceError(f"seed path {str(path)!r} does not exist")
        if path.is_file() or is_hf_dataset_dir(path):
            sources.append(SeedFile(path, fmt or detect_format(path, max_row_bytes)))
            continue
        found = _folder_sources(path, fmt, max_row_bytes)
        if not found:
            raise SeedSourceError(
                f"seed folder {str(path)!r} holds no seed files ({', '.join(FOLDER_SUFFIXES)} or HF dataset folders)"
            )
        sources += found
    return sources


def _folder_sources(folder: Path, fmt: str | None, max_row_bytes: int) -> list[SeedFile]:
    found: list[SeedFile] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if is_hf_dataset_dir(entry):
                found.append(SeedFile(entry, fmt or "hf"))
            else:
                found += _folder_sources(entry, fmt, max_row_bytes)
        elif entry.suffix.lower() in FOLDER_SUFFIXES:
            found.append(SeedFile(entry, fmt or detect_format(entry, max_row_bytes)))
    return found


RowsOrRejects = Iterator["Seed | RejectedRow"]


def read_jsonl(path: Path, fmt: str, max_row_bytes: int) -> RowsOrRejects:
    """JSON Lines (canonical, gsm8k or math rows), one line at a time; blank lines are skipped."""
    converters: dict[str, Callable[[Mapping[str, Any], str], Seed]] = {
        "jsonl": canonical_seed, "gsm8k": gsm8k_seed, "math": math_seed,
    }
    to_seed = converters[fmt]
    prefix = "" if fmt == "jsonl" else f"{fmt}:"
    with open(path, "rb") as f:
        line_no = 0
        while (got := _read_line(f, max_row_bytes)) is not None:
            line_no += 1
            raw, size = got
            if size > max_row_bytes:
                yield RejectedRow(str(path), line_no, f"row is {size} bytes, over the limit of {max_row_bytes}")
                continue
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                seed = to_seed(json_row(raw), f"{prefix}{path.name}:{line_no}")
            except RowError as e:
                yield RejectedRow(str(path), line_no, str(e))
                continue
            yield seed


def csv_cells(record: bytes) -> list[str]:
    """The cells of one CSV record (from `csv_records`); ValueError with the reason if it is not UTF-8."""
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-8 at byte {e.start}") from None
    # A record is at most max_row_bytes long (csv_records drops longer ones unread), so no field of it can pass a
    # field limit that is at least that long.
    if csv.field_size_limit() < len(text):
        csv.field_size_limit(len(text))
    try:
        return next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error as e:
        raise ValueError(f"unreadable CSV row: {e}") from None


def read_csv(path: Path, fmt: str, max_row_bytes: int) -> RowsOrRejects:
    """MMLU (no header) or CMMLU (header ',Question,A,B,C,D,Answer') multiple-choice CSV, record by record; a
    record over max_row_bytes is skipped without being held in memory."""
    subject = mmlu_subject(path.stem) if fmt == "mmlu" else path.stem
    to_seed = mmlu_csv_seed if fmt == "mmlu" else cmmlu_csv_seed
    with open(path, "rb") as f:
        first_row = True
        for record in csv_records(f, max_row_bytes):
            line_no = record.line
            if record.data is None:
                first_row = False
                yield RejectedRow(str(path), line_no, f"row is {record.size} bytes, over the limit of {max_row_bytes}")
                continue
            try:
                cells = csv_cells(record.data)
            except ValueError as e:
                first_row = False
                yield RejectedRow(str(path), line_no, str(e))
                continue
            if first_row:
                first_row = False
                if fmt == "cmmlu" and [c.strip() for c in cells] == CMMLU_HEADER:
                    continue
            if not cells or not any(c.strip() for c in cells):
                continue
            try:
                yield to_seed(cells, subject=subject, source=f"{fmt}:{path.name}:{line_no}")
            except RowError as e:
                yield RejectedRow(str(path), line_no, str(e))


def _row_bytes(row: Mapping[str, Any]) -> int:
    size = 0
    for v in row.values():
        if isinstance(v, str):
            size += len(v.encode("utf-8", "surrogatepass"))
        elif isinstance(v, bytes):
            size += len(v)
        elif v is not None:
            size += len(str(v))
    return size


def _read_records(
    rows: Iterable[Mapping[str, Any]], where: str, name: str, subject: str, max_row_bytes: int
) -> RowsOrRejects:
    for row_no, row in enumerate(rows, start=1):
        size = _row_bytes(row)
        if size > max_row_bytes:
            yield RejectedRow(where, row_no, f"row is {size} bytes, over the limit of {max_row_bytes}")
            continue
        try:
            yield record_seed(row, f"{name}:{row_no}", subject=subject)
        except RowError as e:
            yield RejectedRow(where, row_no, str(e))


def read_parquet(path: Path, max_row_bytes: int, batch_rows: int = 1024) -> RowsOrRejects:
    """A Parquet file in record batches of `batch_rows`."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a corrupt or non-Parquet file
        yield RejectedRow(str(path), 0, f"unreadable Parquet file: {e}")
        return

    def rows() -> Iterator[dict[str, Any]]:
        for batch in pf.iter_batches(batch_size=batch_rows):
            yield from batch.to_pylist()

    yield from _read_records(rows(), str(path), path.name, mmlu_subject(path.stem), max_row_bytes)


def read_hf_dataset(path: Path, max_row_bytes: int, batch_rows: int = 1024) -> RowsOrRejects:
    """A `save_to_disk` folder: a Dataset, or every split of a DatasetDict (in name order)."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises FileNotFoundError, ValueError, ... for a damaged folder
        yield RejectedRow(str(path), 0, f"unreadable HF dataset folder: {e}")
        return
    splits = sorted(loaded.items()) if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    for split, ds in splits:
        where = f"{path}/{split}" if split else str(path)
        name = f"{path.name}/{split}" if split else path.name

        def rows(ds: Any = ds) -> Iterator[dict[str, Any]]:
            for batch in ds.iter(batch_size=batch_rows):
                columns = list(batch)
                n = len(batch[columns[0]]) if columns else 0
                for i in range(n):
                    yield {c: batch[c][i] for c in columns}

        yield from _read_records(rows(), where, name, "", max_row_bytes)


def read_source(source: SeedFile, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> RowsOrRejects:
    """Seeds and rejected rows of one source, in file order."""
    fmt = source.format
    if fmt in ("jsonl", "gsm8k", "math"):
        yield from read_jsonl(source.path, fmt, max_row_bytes)
    elif fmt in ("mmlu", "cmmlu"):
        yield from read_csv(source.path, fmt, max_row_bytes)
    elif fmt == "parquet":
        yield from read_parquet(source.path, max_row_bytes)
    elif fmt == "hf":
        yield from read_hf_dataset(source.path, max_row_bytes)
    else:
        raise SeedSourceError(f"unknown seed format {fmt!r} for {str(source.path)!r}")


class SeedReader:
    """Reads seeds from many paths, keeping count of what was read and what was rejected.

    Usage: `reader = SeedReader(paths, fmt); for seed in reader: ...; reader.rejected`. Paths are checked when
    the reader is made (SeedSourceError), so a typo fails before anything is read or pushed.
    """

    def __init__(
        self,
        paths: Iterable[str | Path],
        fmt: str | None = None,
        *,
        max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
        max_rejected_kept: int = 1000,
    ) -> None:
        self.max_row_bytes = max_row_bytes
        self.sources = plan_sources(paths, fmt, max_row_bytes)
        self.max_rejected_kept = max_rejected_kept
        self.read_count = 0
        """Seeds yielded so far."""
        self.rejected_count = 0
        """Rows rejected so far (all of them; `rejected` keeps the first max_rejected_kept)."""
        self.rejected: list[RejectedRow] = []
        """The first max_rejected_kept rejected rows."""
        self.on_reject: Callable[[RejectedRow], None] | None = None
        """Called with every rejected row as it is found (e.g. to print it)."""

    def __iter__(self) -> Iterator[Seed]:
        for source in self.sources:
            for item in read_source(source, self.max_row_bytes):
                if isinstance(item, RejectedRow):
                    self.rejected_count += 1
                    if len(self.rejected) < self.max_rejected_kept:
                        self.rejected.append(item)
                    if self.on_reject is not None:
                        self.on_reject(item)
                else:
                    self.read_count += 1
                    yield item
