"""`linksyn graph stats|export` on a snapshot directory."""

from __future__ import annotations

import igraph as ig
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.graph.build import KPGraph
from linksyn.graph.cli import app
from typer.testing import CliRunner

from tests.graph.graph_fixtures import HAND_SEEDS, annotated


def write_hand_snapshot(path) -> None:
    g = KPGraph()
    g.ingest_annotated([annotated(*s) for s in HAND_SEEDS])
    SnapshotStore(path).write(g.to_snapshot(1))


def test_stats_prints_nodes_and_edges(tmp_path):
    write_hand_snapshot(tmp_path / "graph")
    r = CliRunner().invoke(app, ["stats", str(tmp_path / "graph")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert "nodes: 6" in lines and "edges: 5" in lines and "seeds: 7" in lines
    assert "components: 2 (largest 4 KPs, 0 isolated)" in lines
    assert any(line.split() == ["3", "b"] for line in lines)


def test_stats_on_an_empty_directory_fails_clearly(tmp_path):
    r = CliRunner().invoke(app, ["stats", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and "no complete snapshot" in r.output
    assert not (tmp_path / "nothing").exists()  # looking creates nothing


def test_export_graphml(tmp_path):
    write_hand_snapshot(tmp_path / "graph")
    out = tmp_path / "g.graphml"
    r = CliRunner().invoke(app, ["export", str(tmp_path / "graph"), "--format", "graphml", "--out", str(out)])
    assert r.exit_code == 0, r.output
    g = ig.Graph.Read_GraphML(str(out))
    assert (g.vcount(), g.ecount()) == (6, 5)
    assert sorted(g.es["weight"]) == [1.0, 1.0, 1.0, 2.0, 2.0]
    assert g.vs["name"] == ["a", "b", "c", "d", "e", "f"]
