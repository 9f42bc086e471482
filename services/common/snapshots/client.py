"""Client side of GraphService: fetch a snapshot over gRPC (what the sampler calls)."""

from __future__ import annotations

import json
from typing import Sequence

import grpc
from linksyn.common.snapshots import wire
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.v1 import common_pb2, graph_pb2, graph_pb2_grpc


def fetch_snapshot(
    channel: grpc.Channel,
    version: int = 0,
    *,
    verify: bool = True,
    metadata: Sequence[tuple[str, str]] | None = None,
    timeout_s: float | None = None,
) -> GraphSnapshot:
    """Stream snapshot `version` (0 = the latest published) and reassemble it; every array is checked against the
    manifest (size, dtype, shape and, with `verify`, sha256). Raises ValueError on an incomplete or corrupt stream
    and grpc.RpcError on transport errors (NOT_FOUND for an unknown version)."""
    stub = graph_pb2_grpc.GraphServiceStub(channel)
    buffers: dict[str, bytearray] = {}
    received: dict[str, int] = {}
    got_version = None
    ended = False
    for chunk in stub.Snapshot(graph_pb2.SnapshotRequest(version=version), metadata=metadata, timeout=timeout_s):
        got_version = chunk.version
        buf = buffers.get(chunk.name)
        if buf is None:
            buf = buffers[chunk.name] = bytearray(chunk.total)
            received[chunk.name] = 0
        end = chunk.offset + len(chunk.data)
        if end > len(buf):
            raise ValueError(f"snapshot stream: chunk of {chunk.name!r} ends at {end}, past its total {len(buf)}")
        buf[chunk.offset : end] = chunk.data
        received[chunk.name] += len(chunk.data)
        ended = ended or chunk.last
    where = f"snapshot v{got_version} stream"
    if not ended:
        raise ValueError(f"{where} ended without its last chunk (connection cut?)")
    if wire.MANIFEST not in buffers:
        raise ValueError(f"{where} carried no manifest")
    short = {n: (received[n], len(b)) for n, b in buffers.items() if received[n] != len(b)}
    if short:
        raise ValueError(f"{where}: arrays incomplete (received, total bytes): {short}")
    manifest = wire.parse_manifest(bytes(buffers.pop(wire.MANIFEST)), where)
    return wire.decode(manifest, buffers, where, verify=verify)


def published_version(
    channel: grpc.Channel, *, metadata: Sequence[tuple[str, str]] | None = None, timeout_s: float | None = 10.0
) -> int:
    """The version of the latest published snapshot (0 = none yet), from Stats: a cheap check before fetching."""
    reply = graph_pb2_grpc.GraphServiceStub(channel).Stats(common_pb2.StatsRequest(), metadata=metadata, timeout=timeout_s)
    return int(json.loads(reply.details_json or "{}").get("snapshot_version", 0))
