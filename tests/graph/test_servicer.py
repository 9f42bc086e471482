"""GraphService over an in-process gRPC server: Stats, Lookup, Neighbours, SeedsFor, and the Snapshot stream
reassembled by the client into the exact snapshot."""

from __future__ import annotations

import json
from concurrent import futures

import grpc
import pytest
from linksyn.common.config import TopicsConfig
from linksyn.common.snapshots.client import fetch_snapshot, published_version
from linksyn.graph.config import GraphConfig
from linksyn.graph.servicer import GraphServicer
from linksyn.graph.stage import GraphStage
from linksyn.v1 import common_pb2, graph_pb2, graph_pb2_grpc

from tests.graph.graph_fixtures import HAND_SEEDS, annotated, synthetic_batch


@pytest.fixture
def served(tmp_path):
    """(stage, channel): a stage with the hand fixture published as v1, served on a loopback port."""
    cfg = GraphConfig(snapshot_url=str(tmp_path / "graph"), stream_chunk_bytes=1024)
    stage = GraphStage(cfg, TopicsConfig())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    graph_pb2_grpc.add_GraphServiceServicer_to_server(GraphServicer(stage, default_limit=2, chunk_bytes=1024), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield stage, channel
    channel.close()
    server.stop(grace=None)


def test_before_any_snapshot_queries_are_unavailable_and_snapshots_not_found(served):
    _, channel = served
    with pytest.raises(grpc.RpcError) as e:
        graph_pb2_grpc.GraphServiceStub(channel).Lookup(graph_pb2.KPRequest(text="a"))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.RpcError) as e:
        fetch_snapshot(channel)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert published_version(channel) == 0


def test_queries_on_the_hand_fixture(served):
    stage, channel = served
    stage.graph.ingest_annotated([annotated(*s) for s in HAND_SEEDS])
    stage.publish()
    stub = graph_pb2_grpc.GraphServiceStub(channel)

    c = stub.Lookup(graph_pb2.KPRequest(text="c"))
    assert (c.id, c.text, c.discipline, c.popularity, list(c.difficulty_histogram)) == (2, "c", "physics", 3, [0, 1, 2, 0, 0])
    assert stub.Lookup(graph_pb2.KPRequest(text="  C ")).id == 2  # normalised lookup
    assert stub.Lookup(graph_pb2.KPRequest(kp_id=5)).text == "f"
    with pytest.raises(grpc.RpcError) as e:
        stub.Lookup(graph_pb2.KPRequest(text="nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and "'nope'" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        stub.Neighbours(graph_pb2.KPRequest(kp_id=99))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND

    # c's neighbours: b (2), a (1), d (1): heaviest first, ties by id; default limit 2
    nb = stub.Neighbours(graph_pb2.KPRequest(text="c", limit=10)).neighbours
    assert [(n.kp.text, n.weight) for n in nb] == [("b", 2.0), ("a", 1.0), ("d", 1.0)]
    assert len(stub.Neighbours(graph_pb2.KPRequest(text="c")).neighbours) == 2
    assert list(stub.SeedsFor(graph_pb2.KPRequest(text="b", limit=10)).seed_ids) == ["s1", "s2", "s5"]

    stats = stub.Stats(common_pb2.StatsRequest())
    details = json.loads(stats.details_json)
    assert stats.service == "graph"
    assert {k: details[k] for k in ("nodes", "edges", "seeds", "components", "snapshot_version")} == {
        "nodes": 6, "edges": 5, "seeds": 7, "components": 2, "snapshot_version": 1,
    }


def test_snapshot_stream_reassembles_equal_arrays(served):
    stage, channel = served
    stage.graph.ingest(synthetic_batch(400, n_kps=120, seed=7))  # arrays of several 1 KiB chunks
    v1 = stage.publish()
    stage.graph.ingest(synthetic_batch(50, n_kps=120, seed=8, prefix="t"))
    v2 = stage.publish()
    assert v1.n_edges > 100 and max(a.nbytes for a in v1.arrays().values()) > 4096
    assert published_version(channel) == 2
    got = fetch_snapshot(channel)
    assert got.version == 2 and got.differences(v2) == [] and got.meta == v2.meta and got.offsets == v2.offsets
    old = fetch_snapshot(channel, version=1)
    assert old.version == 1 and old.differences(v1) == []
    with pytest.raises(grpc.RpcError) as e:
        fetch_snapshot(channel, version=7)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_stream_chunks_are_at_most_the_chunk_size(served):
    stage, channel = served
    stage.graph.ingest(synthetic_batch(300, n_kps=100, seed=9))
    stage.publish()
    chunks = list(graph_pb2_grpc.GraphServiceStub(channel).Snapshot(graph_pb2.SnapshotRequest()))
    assert chunks[0].name == "manifest.json" and chunks[-1].last and not any(c.last for c in chunks[:-1])
    assert all(len(c.data) <= 1024 for c in chunks)
    assert {c.name for c in chunks} >= {"indptr", "indices", "weights", "kp_text.blob", "seed_question.offsets"}
