"""Settings of the graph service (a section of LinksynConfig: `graph:` in YAML, `LINKSYN_GRAPH__*` in the env)."""

from __future__ import annotations

from pydantic import Field

from linksyn.common.config import Section


class GraphConfig(Section):
    """The graph stage."""

    snapshot_url: str = "./linksyn-data/graph"
    """Where snapshots are written: a local directory or any fsspec URL (s3://bucket/graph, gs://...).
    `linksyn run --out DIR` sets it to DIR/graph."""
    snapshot_every_seeds: int = Field(default=100_000, ge=1)
    """Publish a new snapshot after this many newly ingested seeds."""
    snapshot_every_s: float = Field(default=60.0, gt=0)
    """...or after this many seconds, if anything changed since the last one (seeds or consumed offsets)."""
    snapshot_keep: int = Field(default=3, ge=1)
    """Snapshots kept in the store; older ones are deleted after each write."""
    verify_on_load: bool = True
    """Check every array's sha256 against the manifest when loading a snapshot at start."""
    max_kps_per_seed: int = Field(default=8, ge=1, le=64)
    """An AnnotatedSeed with more KPs is dead-lettered (the extractor produces 1-8; each seed adds k(k-1)/2 edges)."""
    max_kp_chars: int = Field(default=200, ge=1)
    """An AnnotatedSeed with a longer KP text is dead-lettered; a Lookup/Neighbours/SeedsFor request with a longer
    `text` is refused with INVALID_ARGUMENT."""
    max_seed_text_chars: int = Field(default=100_000, ge=1)
    """An AnnotatedSeed whose question plus answer is longer is dead-lettered."""
    reject_unknown_fields: bool = True
    """Dead-letter AnnotatedSeeds carrying fields this version does not know (a producer/consumer schema skew)."""
    query_limit: int = Field(default=100, ge=1)
    """Results of Neighbours / SeedsFor when the request gives no limit."""
    stream_chunk_bytes: int = Field(default=1 << 20, ge=1024)
    """Size of the pieces the Snapshot RPC streams arrays in."""
