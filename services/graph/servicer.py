"""gRPC GraphService over the last published snapshot. Thin: decode, call linksyn.graph.query, encode.

Queries read the published (durable, immutable) snapshot, never the graph being ingested, so they need no lock and
always see a consistent graph; `Snapshot` streams a stored version's .npy files as they are on disk.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, Mapping, Protocol

import grpc
from linksyn.common.config import redact_url_passwords
from linksyn.common.runtime.stats import RuntimeStats
from linksyn.common.snapshots import wire
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.graph import analysis
from linksyn.graph.query import SnapshotIndex
from linksyn.v1 import graph_pb2, graph_pb2_grpc


class SnapshotSource(Protocol):
    """What the servicer reads (GraphStage is one)."""

    name: str
    store: SnapshotStore
    published: GraphSnapshot | None

    def live_stats(self) -> Mapping[str, int]: ...


class GraphServicer(RuntimeStats, graph_pb2_grpc.GraphServiceServicer):
    def __init__(
        self, source: SnapshotSource, default_limit: int = 100, chunk_bytes: int = 1 << 20, max_text_chars: int = 200
    ) -> None:
        self.source = source
        self.max_text_chars = max_text_chars
        """Longest KPRequest.text accepted (graph.max_kp_chars: no stored KP is longer)."""
        self.stats_service = source.name
        self.default_limit = default_limit
        self.chunk_bytes = chunk_bytes
        self._lock = threading.Lock()
        self._index: SnapshotIndex | None = None
        self._components: tuple[int, int] | None = None  # (version, count)

    def _current(self, context: grpc.ServicerContext) -> SnapshotIndex:
        snap = self.source.published
        if snap is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the graph service has not published a snapshot yet")
        with self._lock:
            if self._index is None or self._index.snap is not snap:
                self._index = SnapshotIndex(snap)
            return self._index

    def _check(self, request: graph_pb2.KPRequest, context: grpc.ServicerContext) -> None:
        """Refuse a request no KP can answer before any work: a text longer than any stored KP."""
        if len(request.text) > self.max_text_chars:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"text is {len(request.text)} characters, over graph.max_kp_chars={self.max_text_chars}",
            )

    def _kp(self, index: SnapshotIndex, request: graph_pb2.KPRequest, context: grpc.ServicerContext) -> int:
        if request.text:
            kp = index.lookup(request.text)
            if kp is None:
                context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"no KP {request.text!r} in snapshot v{index.snap.version} (also tried its normalised form)",
                )
            return kp
        try:
            return index.check(request.kp_id)
        except KeyError as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e.args[0]))
        raise AssertionError("unreachable")

    def _limit(self, request: graph_pb2.KPRequest) -> int:
        return request.limit if request.limit > 0 else self.default_limit

    @staticmethod
    def _message(index: SnapshotIndex, kp: int) -> graph_pb2.KnowledgePoint:
        info = index.info(kp)
        return graph_pb2.KnowledgePoint(
            id=info.id, text=info.text, discipline=info.discipline, popularity=info.popularity,
            difficulty_histogram=info.difficulty_hist,
        )

    # ---- RPCs --------------------------------------------------------------------------------------------------

    def stats_details(self) -> Mapping[str, Any]:
        snap = self.source.published
        url = redact_url_passwords(self.source.store.url)  # Stats is readable by anyone holding the token
        details: dict[str, Any] = {"snapshot_version": 0, "snapshot_url": url}
        details.update({f"live_{k}": v for k, v in self.source.live_stats().items()})
        if snap is None:
            return details
        with self._lock:
            if self._components is None or self._components[0] != snap.version:
                self._components = (snap.version, analysis.components(snap).count)
            n_components = self._components[1]
        details.update(
            nodes=snap.n_kps, edges=snap.n_edges, seeds=snap.n_seeds, components=n_components,
            snapshot_version=snap.version, snapshot_offsets=snap.offsets,
            snapshot_created_unix_ms=int(snap.meta.get("created_unix_ms", 0)),
        )
        return details

    def Lookup(self, request: graph_pb2.KPRequest, context: grpc.ServicerContext) -> graph_pb2.KnowledgePoint:  # noqa: N802
        self._check(request, context)
        index = self._current(context)
        return self._message(index, self._kp(index, request, context))

    def Neighbours(self, request: graph_pb2.KPRequest, context: grpc.ServicerContext) -> graph_pb2.NeighboursReply:  # noqa: N802
        self._check(request, context)
        index = self._current(context)
        kp = self._kp(index, request, context)
        return graph_pb2.NeighboursReply(
            neighbours=[
                graph_pb2.Neighbour(kp=self._message(index, n), weight=w)
                for n, w in index.neighbours(kp, self._limit(request))
            ]
        )

    def SeedsFor(self, request: graph_pb2.KPRequest, context: grpc.ServicerContext) -> graph_pb2.SeedsForReply:  # noqa: N802
        self._check(request, context)
        index = self._current(context)
        kp = self._kp(index, request, context)
        return graph_pb2.SeedsForReply(seed_ids=index.seeds_for(kp, self._limit(request)))

    def Snapshot(self, request: graph_pb2.SnapshotRequest, context: grpc.ServicerContext) -> Iterator[graph_pb2.SnapshotChunk]:  # noqa: N802
        store = self.source.store
        version = request.version
        if version == 0:
            published = self.source.published
            if published is None:  # NOT_FOUND, as for an unknown version: readers poll again later
                context.abort(grpc.StatusCode.NOT_FOUND, "the graph service has not published a snapshot yet")
            version = published.version
        try:
            manifest = store.manifest(version)
        except FileNotFoundError as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        names = list(manifest["arrays"])
        # The manifest goes first (readers learn every array's size and checksum), then each array's .npy bytes.
        pieces = [(wire.MANIFEST, wire.manifest_bytes(manifest))]
        yield from _chunks(version, *pieces[0], self.chunk_bytes, last=not names)
        for i, name in enumerate(names):
            yield from _chunks(version, name, store.blob(version, name), self.chunk_bytes, last=i == len(names) - 1)


def _chunks(version: int, name: str, data: bytes, size: int, last: bool) -> Iterator[graph_pb2.SnapshotChunk]:
    total = len(data)
    view = memoryview(data)
    starts = range(0, total, size) if total else [0]
    for i, off in enumerate(starts):
        yield graph_pb2.SnapshotChunk(
            version=version, name=name, offset=off, data=bytes(view[off : off + size]), total=total,
            last=last and i == len(starts) - 1,
        )
