"""`linksyn near-dups`: the global near-duplicate pass over the sink's finished dataset (linksyn.sink.near_dups)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer


def near_dups(
    out: str = typer.Option(..., "--out", help="Folder (or fsspec URL) for the deduplicated dataset; must be new."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="The sink's dataset folder or URL (default: "
                                          "sink.output_dir of the configuration)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="jsonl or parquet: which shards to read and write "
                                      "(default: parquet when the dataset has it)."),
    tasks: Optional[int] = typer.Option(None, "--tasks", min=1, help="Parallel tasks of the signature and filter "
                                        "steps (default: the CPUs here)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes at once (default: --tasks)."),
    work: Optional[str] = typer.Option(None, "--work", help="Folder for signatures, buckets and datatrove's logs "
                                       "(default: OUT/.near-dups-work); run again with the same one to resume."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False,
                                          help="linksyn YAML config (its `sink` section: threshold, shingles)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="datatrove's progress and statistics on stderr."),
) -> None:
    """Remove near duplicates across the whole dataset, with datatrove's MinHash deduplication (signatures, LSH
    buckets, clusters, filter) on its local executor, using the sink's shingles and threshold. The stream only sees
    near duplicates inside a partition's recent window; this pass sees them all. Prints a JSON summary (kept,
    removed); the result is a dataset in the sink's layout with its card."""
    from linksyn.config import ConfigError, load_config
    from linksyn.sink.near_dups import NearDupPass, default_tasks

    if fmt not in (None, "jsonl", "parquet"):
        raise typer.BadParameter(f"--format must be jsonl or parquet, got {fmt!r}", param_hint="--format")
    try:
        cfg = load_config(config).sink
    except ConfigError as e:
        raise typer.BadParameter(str(e), param_hint="--config") from None
    if not verbose:
        from loguru import logger

        logger.remove()
        logger.add(sys.stderr, level="WARNING")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr)
    source = dataset or cfg.output_dir
    if source.rstrip("/") == out.rstrip("/"):
        raise typer.BadParameter("--out must be another folder than the dataset", param_hint="--out")
    n = tasks or default_tasks()
    try:
        run = NearDupPass.from_sink(cfg, source, out, work, fmt, n, workers or n)  # type: ignore[arg-type]
    except FileNotFoundError as e:
        raise typer.BadParameter(str(e), param_hint="--dataset") from None
    report = run.run()
    typer.echo(json.dumps(report.to_json()))
