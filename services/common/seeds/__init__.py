"""Seed ingestion: read seed QA pairs from the formats people have them in, as `linksyn.v1.Seed` records.

`SeedReader(paths, fmt=None)` expands files and folders, detects each file's format (or uses `fmt`), and yields
Seeds while collecting the rows it had to skip as `RejectedRow(path, line, reason)`. `rows` holds the pure
row -> Seed conversions, `readers` the streaming file readers.
"""

from linksyn.common.seeds.readers import (
    DEFAULT_MAX_ROW_BYTES,
    FORMATS,
    RejectedRow,
    SeedFile,
    SeedReader,
    SeedSourceError,
    detect_format,
    plan_sources,
    read_source,
)
from linksyn.common.seeds.rows import RowError

__all__ = [
    "DEFAULT_MAX_ROW_BYTES",
    "FORMATS",
    "RejectedRow",
    "RowError",
    "SeedFile",
    "SeedReader",
    "SeedSourceError",
    "detect_format",
    "plan_sources",
    "read_source",
]
