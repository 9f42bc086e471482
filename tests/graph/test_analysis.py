"""igraph analysis of a snapshot: structure, components, distributions, communities, canonical relabelling."""

from __future__ import annotations

import numpy as np
from tests.graph.graph_fixtures import HAND_SEEDS, annotated, synthetic_batch

from linksyn.graph import analysis
from linksyn.graph.build import KPGraph, SeedBatch


def hand_snapshot():
    g = KPGraph()
    g.ingest_annotated([annotated(*s) for s in HAND_SEEDS])
    return g.to_snapshot(1)


def test_to_igraph_carries_structure_and_attributes():
    g = analysis.to_igraph(hand_snapshot())
    assert (g.vcount(), g.ecount(), g.is_directed()) == (6, 5, False)
    edges = {(e.source, e.target): e["weight"] for e in g.es}
    assert edges == {(0, 1): 2.0, (0, 2): 1.0, (1, 2): 2.0, (2, 3): 1.0, (4, 5): 1.0}
    assert g.vs["name"] == ["a", "b", "c", "d", "e", "f"]
    assert g.vs["discipline"] == ["math", "math", "physics", "physics", "math", "math"]
    assert g.vs["popularity"] == [2, 3, 3, 1, 2, 2]
    live = KPGraph()
    live.ingest_annotated([annotated(*s) for s in HAND_SEEDS])
    assert analysis.to_igraph(live).get_edgelist() == g.get_edgelist()


def test_components_and_degree_stats():
    snap = hand_snapshot()
    cc = analysis.components(snap)
    assert (cc.count, cc.largest, cc.isolated) == (2, 4, 0)
    assert cc.membership[0] == cc.membership[3] != cc.membership[4] == cc.membership[5]
    ds = analysis.degree_stats(snap)
    assert ds["degree"]["max"] == 3 and ds["degree"]["min"] == 1  # c has a, b, d
    assert ds["strength"]["max"] == 4  # b: 2 + 2, c: 1 + 2 + 1
    assert ds["weight"]["mean"] == 7 / 5
    assert analysis.top_kps(snap, 3) == [("b", 3), ("c", 3), ("a", 2)]


def test_isolated_kp_and_empty_rows():
    g = KPGraph()
    g.ingest(SeedBatch.from_lists(["x", "y"], [["solo"], ["p", "q"]]))
    snap = g.to_snapshot(1)
    assert analysis.components(snap).isolated == 1
    assert analysis.degree_stats(snap)["strength"]["min"] == 0


def test_communities_split_two_dense_clusters():
    # two cliques of KPs joined by one light edge: any modularity method must separate them
    seeds, kps = [], []
    for c in ("x", "y"):
        for i in range(20):
            seeds.append(f"{c}{i}")
            kps.append([f"{c}-{(i + j) % 6}" for j in range(3)])
    seeds.append("bridge")
    kps.append(["x-0", "y-0"])
    g = KPGraph()
    g.ingest(SeedBatch.from_lists(seeds, kps))
    snap = g.to_snapshot(1)
    for method in ("leiden", "multilevel"):
        com = analysis.communities(snap, method=method)
        assert com.count == 2 and com.modularity > 0.4, method
        x = [snap.kp_text.to_list().index(f"x-{i}") for i in range(6)]
        assert len(set(com.membership[x].tolist())) == 1


def test_canonical_form_is_sorted_and_equal_for_the_same_graph():
    snap = hand_snapshot()
    can = analysis.canonical_form(snap)
    assert can.kp_text.to_list() == sorted(snap.kp_text.to_list())
    assert can.seed_ids.to_list() == sorted(snap.seed_ids.to_list())
    assert analysis.to_igraph(can).isomorphic(analysis.to_igraph(snap))
    big = KPGraph()
    big.ingest(synthetic_batch(300, seed=11))
    s = big.to_snapshot(1)
    assert np.array_equal(np.sort(analysis.canonical_form(s).weights), np.sort(s.weights))
