"""Snapshot store: exact round trip (local directory and fsspec memory://), atomic versions, retention."""

from __future__ import annotations

import uuid

import fsspec
import numpy as np
import pytest
from linksyn.common.snapshots import wire
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.graph.build import KPGraph

from tests.graph.graph_fixtures import synthetic_batch


def snapshot(version: int, n: int = 300, seed: int = 0) -> GraphSnapshot:
    g = KPGraph()
    g.ingest(synthetic_batch(n, n_kps=80, seed=seed))
    return g.to_snapshot(version, offsets={"linksyn.seed-kps": {0: 10 * version, 3: 7}}, meta={"created_unix_ms": "1"})


def assert_same(a: GraphSnapshot, b: GraphSnapshot) -> None:
    assert a.differences(b) == []
    assert (a.version, a.offsets, a.meta) == (b.version, b.offsets, b.meta)
    for name, x in a.arrays().items():
        assert x.dtype == b.arrays()[name].dtype, name


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path) -> SnapshotStore:
    if request.param == "local":
        return SnapshotStore(tmp_path / "graph", keep=2)
    return SnapshotStore(f"memory://graph-test-{uuid.uuid4().hex}", keep=2)


def test_round_trip_is_exact(store):
    snap = snapshot(1)
    assert store.latest() is None and store.versions() == []
    store.write(snap)
    assert store.versions() == [1] and store.latest_version() == 1
    assert_same(store.load(1), snap)
    assert_same(store.latest(), snap)
    assert store.load(1).offsets == {"linksyn.seed-kps": {0: 10, 3: 7}}


def test_versions_are_immutable_and_retention_keeps_the_newest(store):
    for v in (1, 2, 3):
        store.write(snapshot(v, seed=v))
    assert store.versions() == [2, 3]
    assert_same(store.latest(), snapshot(3, seed=3))
    with pytest.raises(ValueError, match="already exists"):
        store.write(snapshot(3))
    with pytest.raises(FileNotFoundError, match=r"v1 is not in .*complete versions: \[2, 3\]"):
        store.load(1)


def test_a_version_without_manifest_is_incomplete_and_ignored(store):
    store.write(snapshot(1))
    # a writer that died after writing some arrays of v2 (object-store layout; locally it would be v2.tmp)
    store.fs.makedirs(store._path("v00000002"), exist_ok=True)
    store.fs.pipe_file(store._path("v00000002", "indptr.npy"), b"partial")
    store.fs.makedirs(store._path("v00000003.tmp"), exist_ok=True)
    assert store.versions() == [1] and store.latest_version() == 1
    store.write(snapshot(2, seed=5))  # the leftover is replaced
    assert_same(store.latest(), snapshot(2, seed=5))
    store.write(snapshot(4))
    assert not store.fs.exists(store._path("v00000003.tmp"))  # swept


def test_latest_pointer_lagging_behind_a_complete_version(store):
    store.write(snapshot(1))
    store.write(snapshot(2, seed=2))
    store.fs.pipe_file(store._path("LATEST"), b"1\n")  # crash between the rename and the pointer update
    assert store.latest_version() == 2


def test_corrupted_array_is_detected(tmp_path):
    store = SnapshotStore(tmp_path)
    store.write(snapshot(1))
    path = tmp_path / "v00000001" / "weights.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="'weights' has sha256"):
        store.load(1)


def test_local_layout_is_plain_npy_files(tmp_path):
    store = SnapshotStore(tmp_path, keep=1)
    snap = snapshot(7)
    store.write(snap)
    assert (tmp_path / "LATEST").read_text() == "7\n"
    assert np.array_equal(np.load(tmp_path / "v00000007" / "indices.npy"), snap.indices)
    manifest = wire.parse_manifest((tmp_path / "v00000007" / "manifest.json").read_bytes(), "test")
    assert manifest["version"] == 7 and manifest["arrays"]["weights"]["dtype"] == "<f4"
    assert not list(tmp_path.glob("*.tmp"))


def test_any_fsspec_url_by_string():
    url = f"memory://bucket-{uuid.uuid4().hex}/graph"
    SnapshotStore(url).write(snapshot(1))
    assert fsspec.filesystem("memory").exists(url.removeprefix("memory://") + "/v00000001/manifest.json")
    assert SnapshotStore(url).latest_version() == 1
