"""The KP graph domain: exact graph of a hand-made fixture, incremental == one-shot, idempotent re-ingest."""

from __future__ import annotations

import numpy as np
import pytest
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.graph.analysis import canonical_form
from linksyn.graph.build import KPGraph, SeedBatch, stable_order, warm_up
from linksyn.graph.interning import StringIndex

from tests.graph.graph_fixtures import EXPECTED, HAND_SEEDS, annotated, synthetic_batch


def csr_rows(indptr: np.ndarray, indices: np.ndarray) -> list[list[int]]:
    return [indices[indptr[i] : indptr[i + 1]].tolist() for i in range(len(indptr) - 1)]


def test_hand_fixture_graph_is_exact(hand_seeds):
    g = KPGraph()
    report = g.ingest_annotated(hand_seeds)
    assert (report.seeds_added, report.seeds_skipped, report.kps_added) == (7, 0, 6)
    assert g.kp_texts() == EXPECTED["kps"]
    u, v, w = g.edges()
    assert dict(zip(zip(u.tolist(), v.tolist()), w.tolist())) == EXPECTED["edges"]
    assert g.kp_popularity().tolist() == EXPECTED["popularity"]
    assert g.kp_difficulty_hist().tolist() == EXPECTED["hist"]
    assert g.disciplines == EXPECTED["disciplines"]
    assert g.kp_discipline().tolist() == EXPECTED["kp_discipline"]
    assert [g.seeds_of_kp(k).tolist() for k in range(6)] == EXPECTED["kp_seeds"]
    assert [g.kps_of_seed(r).tolist() for r in range(7)] == EXPECTED["seed_kps"]

    snap = g.to_snapshot(version=3, offsets={"t": {0: 7}})
    assert (snap.version, snap.offsets, snap.n_kps, snap.n_edges, snap.n_seeds) == (3, {"t": {0: 7}}, 6, 5, 7)
    assert snap.indptr.tolist() == EXPECTED["indptr"]
    assert snap.indices.tolist() == EXPECTED["indices"]
    assert snap.weights.tolist() == EXPECTED["weights"]
    assert (snap.indices.dtype, snap.weights.dtype, snap.indptr.dtype) == (np.int32, np.float32, np.int64)
    assert csr_rows(snap.kp_seed_indptr, snap.kp_seed_indices) == EXPECTED["kp_seeds"]
    assert csr_rows(snap.seed_kp_indptr, snap.seed_kp_indices) == EXPECTED["seed_kps"]
    assert snap.kp_text.to_list() == EXPECTED["kps"]
    assert snap.seed_ids.to_list() == [s[0] for s in HAND_SEEDS]
    assert snap.seed_discipline.tolist() == EXPECTED["seed_discipline"]
    assert snap.seed_difficulty.tolist() == EXPECTED["seed_difficulty"]
    assert snap.seed_question[4] == "question of s5?" and snap.seed_answer[6] == "answer of s7"
    assert snap.kp_difficulty().tolist() == [2, 2, 3, 3, 1, 1]


def test_majority_discipline_tie_ignores_arrival_order():
    # "f" has one physics and one math seed; whichever arrives first, the tie goes to "math".
    for order in (["p", "m"], ["m", "p"]):
        g = KPGraph()
        for s in order:
            g.ingest_annotated([annotated(s, ["f"], {"p": "physics", "m": "math"}[s], 1)])
        assert g.disciplines[g.kp_discipline()[0]] == "math"


def test_stable_order_is_a_stable_argsort():
    k = np.random.default_rng(10).integers(0, 50, 5000)
    assert stable_order(k).tolist() == np.argsort(k, kind="stable").tolist()
    assert stable_order(np.zeros(0, np.int64)).tolist() == []


def split(batch: SeedBatch, cuts: list[int]) -> list[SeedBatch]:
    out, bounds = [], [0, *cuts, len(batch)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        lo, hi = batch.kp_indptr[a], batch.kp_indptr[b]
        out.append(
            SeedBatch(
                batch.seed_ids[a:b],
                batch.kp_indptr[a : b + 1] - lo,
                batch.kps[lo:hi],
                batch.discipline[a:b],
                batch.difficulty[a:b],
                batch.question[a:b],
                batch.answer[a:b],
            )
        )
    return out


@pytest.mark.parametrize("compact_min", [1, 50, 1 << 20])
def test_incremental_equals_one_shot(compact_min):
    batch = synthetic_batch(3000, n_kps=400, seed=1)
    one = KPGraph()
    one.ingest(batch)
    inc = KPGraph(compact_min=compact_min)
    for part in split(batch, [1, 7, 500, 501, 1700, 2999]):
        inc.ingest(part)
    a, b = one.to_snapshot(1), inc.to_snapshot(1)
    assert a.differences(b) == []
    assert a.n_edges > 1000  # the fixture exercises real merging


def test_edges_match_a_plain_reference():
    batch = synthetic_batch(500, n_kps=60, seed=2)
    g = KPGraph(compact_min=7)
    for part in split(batch, [100, 250]):
        g.ingest(part)
    expected: dict[tuple[int, int], int] = {}
    for i in range(len(batch)):
        ks = sorted({g.kp_id(t) for t in batch.kps[batch.kp_indptr[i] : batch.kp_indptr[i + 1]]})
        for x in range(len(ks)):
            for y in range(x + 1, len(ks)):
                expected[(ks[x], ks[y])] = expected.get((ks[x], ks[y]), 0) + 1
    u, v, w = g.edges()
    assert dict(zip(zip(u.tolist(), v.tolist()), w.tolist())) == expected
    snap = g.to_snapshot(1)
    # symmetric: every (u, v, w) appears as (v, u, w)
    rows = np.repeat(np.arange(snap.n_kps), np.diff(snap.indptr))
    fwd = set(zip(rows.tolist(), snap.indices.tolist(), snap.weights.tolist()))
    assert fwd == {(c, r, x) for r, c, x in fwd}
    assert all(np.all(np.diff(snap.indices[snap.indptr[i] : snap.indptr[i + 1]]) > 0) for i in range(snap.n_kps))


def test_reingest_changes_nothing(hand_seeds):
    g = KPGraph()
    g.ingest_annotated(hand_seeds)
    before = g.to_snapshot(1)
    # same ids with different content: the first occurrence stays
    changed = [annotated(s.seed.id, ["zzz", "yyy"], "law", 5) for s in hand_seeds]
    report = g.ingest_annotated(hand_seeds + changed)
    assert (report.seeds_added, report.seeds_skipped, report.kps_added) == (0, 14, 0)
    assert g.to_snapshot(1).differences(before) == []


def test_first_occurrence_wins_within_a_batch():
    g = KPGraph()
    r = g.ingest_annotated([annotated("x", ["a", "b"], "math", 1), annotated("x", ["c"], "law", 2)])
    assert (r.seeds_added, r.seeds_skipped) == (1, 1)
    assert g.kp_texts() == ["a", "b"] and g.disciplines == ["math"]


def test_snapshot_restores_the_graph_and_continues_identically():
    batch = synthetic_batch(2000, n_kps=300, seed=3)
    first, second = split(batch, [1200])
    straight = KPGraph()
    straight.ingest(first)
    straight.ingest(second)
    resumed = KPGraph.from_snapshot(_ingested(first))
    resumed.ingest(first)  # replay of what the snapshot already holds: no change
    resumed.ingest(second)
    assert resumed.to_snapshot(1).differences(straight.to_snapshot(1)) == []


def _ingested(batch: SeedBatch) -> GraphSnapshot:
    g = KPGraph()
    g.ingest(batch)
    return g.to_snapshot(1)


def test_canonical_form_ignores_arrival_order():
    batch = synthetic_batch(800, n_kps=100, seed=4)
    a, b = KPGraph(), KPGraph()
    parts = split(batch, [300, 550])
    for p in parts:
        a.ingest(p)
    for p in reversed(parts):
        b.ingest(p)
    sa, sb = a.to_snapshot(1), b.to_snapshot(1)
    assert sa.differences(sb) != []  # ids differ...
    assert canonical_form(sa).differences(canonical_form(sb)) == []  # ...the graph does not


def test_bad_batches_are_rejected_before_any_change():
    g = KPGraph()
    with pytest.raises(ValueError, match="difficulty"):
        SeedBatch.from_lists(["a"], [["x"]], difficulty=[9])
    with pytest.raises(ValueError, match="kp_indptr"):
        SeedBatch(["a"], np.array([0, 2]), ["x"], [""], np.zeros(1, np.int8), [""], [""])
    with pytest.raises(ValueError, match="empty KP"):
        g.ingest(SeedBatch.from_lists(["a", "b"], [["x"], ["y", ""]]))
    assert (g.n_seeds, g.n_kps) == (0, 0)


def test_empty_graph_snapshot():
    snap = KPGraph().to_snapshot(1)
    assert (snap.n_kps, snap.n_edges, snap.n_seeds) == (0, 0, 0)
    assert KPGraph.from_snapshot(snap).to_snapshot(1).differences(snap) == []


def test_large_batch_replay_and_new_kps_of_replayed_seeds():
    # A replay adds nothing, and the KPs of a replayed seed (here changed) never enter the graph, even when the same
    # batch brings new seeds.
    batch = synthetic_batch(3000, n_kps=400, seed=5)
    g = KPGraph()
    g.ingest(batch)
    before = g.to_snapshot(1)
    replay = SeedBatch.from_lists(batch.seed_ids, [["never"]] * len(batch))
    assert (g.ingest(replay).seeds_added, g.n_kps) == (0, before.n_kps)
    mixed = SeedBatch.from_lists(
        batch.seed_ids[:2000] + ["n1", "n2"], [["changed"]] * 2000 + [["kp1", "fresh"], ["fresh"]]
    )
    r = g.ingest(mixed)
    assert (r.seeds_added, r.seeds_skipped, r.kps_added) == (2, 2000, 1)
    assert g.kp_id("changed") is None and g.kp_texts()[-1] == "fresh"
    assert g.kps_of_seed(g.n_seeds - 2).tolist() == sorted([g.kp_id("kp1"), g.kp_id("fresh")])


def colliding_graph() -> KPGraph:
    """A graph whose string indexes give every string one hash (see linksyn.graph.interning)."""
    return KPGraph(_kps=StringIndex(hash_bits=0), _discs=StringIndex(hash_bits=0), _seeds=StringIndex(hash_bits=0))


def test_unicode_texts_and_forced_hash_collisions_build_the_same_graph():
    rng = np.random.default_rng(6)
    texts = ["é", "e\u0301", "日本", "🙂", "a\0b", "x" * 300, "x" * 299 + "y", "kp", "kp ", " kp"]
    n = 400
    kps = [[texts[k] for k in rng.integers(0, len(texts), rng.integers(1, 5))] for _ in range(n)]
    ids = [f"s{i}" if i % 7 else f"séed/{i}\0" for i in range(n)]
    batch = SeedBatch.from_lists(ids, kps, difficulty=rng.integers(0, 6, n).tolist())
    parts = split(batch, [5, 200, 210])
    honest = KPGraph()
    for p in parts:
        honest.ingest(p)
    colliding = colliding_graph()
    for p in parts:
        colliding.ingest(p)
        colliding.ingest(p)  # replays are recognised however the hashes collide
    assert colliding.to_snapshot(1).differences(honest.to_snapshot(1)) == []
    assert honest.kp_texts() == list(dict.fromkeys(t for ks in kps for t in ks))
    assert honest.seed_ids() == ids


def test_many_batches_of_mixed_sizes_equal_one_shot():
    batch = synthetic_batch(6000, n_kps=2000, seed=7)
    one = KPGraph()
    one.ingest(batch)
    cuts = sorted({int(c) for c in np.random.default_rng(8).integers(1, len(batch), 60)} | {3000, 3001})
    many = KPGraph(compact_min=500)
    for part in split(batch, cuts):
        many.ingest(part)
        many.ingest(part)  # every batch replayed at once: no change
    assert many.to_snapshot(1).differences(one.to_snapshot(1)) == []


def test_empty_kp_in_a_large_batch_names_its_seed():
    batch = synthetic_batch(2000, seed=9)
    kps = list(batch.kps)
    kps[int(batch.kp_indptr[1234])] = ""
    g = KPGraph()
    with pytest.raises(ValueError, match="seed 's1234' has an empty KP"):
        g.ingest(SeedBatch(batch.seed_ids, batch.kp_indptr, kps, batch.discipline, batch.difficulty,
                           batch.question, batch.answer))
    assert (g.n_seeds, g.n_kps) == (0, 0)


def test_warm_up_compiles_what_an_ingest_runs():
    # The bench and the service call warm_up before the first batch so no compile hides inside an ingest: every
    # kernel an ingest (and a restore from a snapshot) runs must be compiled for the argument types it gets.
    from linksyn.graph import edges, interning

    kernels = [interning._split_at_nul, interning._find, interning._append, interning._insert_all, edges.seed_pairs,
               edges.sort_keys, edges._runs, edges._merged_size, edges._merge_backward]
    assert warm_up() >= 0
    compiled = {f.py_func.__name__: set(f.signatures) for f in kernels}
    assert all(compiled.values()), [name for name, sigs in compiled.items() if not sigs]
    g = KPGraph(compact_min=10)
    batch = synthetic_batch(2500, n_kps=300, seed=11)
    g.ingest(batch)
    g.ingest(SeedBatch.from_lists(batch.seed_ids[:5] + ["new é", "new\0nul"], [["kp 1"]] * 5 + [["日本", "kp 1"]] * 2,
                                  ["physics"] * 7))
    KPGraph.from_snapshot(g.to_snapshot(1)).ingest(batch)
    assert {f.py_func.__name__: set(f.signatures) for f in kernels} == compiled


def test_warm_up_turns_numpy_huge_pages_off():
    from numpy._core.multiarray import _set_madvise_hugepage

    before = _set_madvise_hugepage(True)
    try:
        warm_up()
        assert _set_madvise_hugepage(True) is False  # returns the setting it replaces
    finally:
        _set_madvise_hugepage(before)
