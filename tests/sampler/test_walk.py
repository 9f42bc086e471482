"""Exact start and transition probabilities on a hand-computed graph, and the walks' empirical frequencies."""

from __future__ import annotations

import numpy as np
import pytest

from linksyn.sampler.counters import Counters
from linksyn.sampler.sampler import Sampler, WalkParams
from linksyn.sampler.targets import Targets
from linksyn.sampler.walk import (
    draw_starts,
    row_mass,
    start_probabilities,
    step,
    step_with_positions,
    transition_probabilities,
    walk,
    walk_with_positions,
)

# KPs a b c d e (ids 0..4). Edges: a-b w2, a-c 1, b-c 1, b-d 1, c-d 1, d-e 1. pop = [3, 3, 2, 2, 1].
# Disciplines (sorted: history, math, physics): a, b math; c physics; d history (tie physics/history -> first);
# e history. Grades (modal): a 1, b 1, c 2, d 3, e 4.
SEEDS = [
    ("s0", ["a", "b"], "math", 1),
    ("s1", ["a", "b"], "math", 1),
    ("s2", ["a", "c"], "physics", 2),
    ("s3", ["b", "c", "d"], "physics", 3),
    ("s4", ["d", "e"], "history", 4),
]
A, B, C, D, E = range(5)


def tolerance(p: float, n: int) -> float:
    """5 standard deviations of a frequency estimate from n draws."""
    return 5 * np.sqrt(p * (1 - p) / n) + 1e-9


@pytest.fixture
def value_sampler(make_snapshot) -> Sampler:
    snap = make_snapshot(SEEDS)
    c = Counters.empty(snap)
    c.kp_cov[C] = 1
    c.discipline_counts = {"math": 3, "physics": 1}  # 4 paths emitted, no graded one: grade feedback is off
    params = WalkParams(alpha=1.0, beta=1.0, gamma=2.0, eta=1.0, eps=0.01, gate_max=4.0)
    # Grade targets chosen to agree with where the discipline feedback aims (see below), so that the gate's
    # raking over the (discipline, grade) cells has an exact hand-computable solution.
    targets = Targets(difficulty={"1": 1, "2": 3, "3": 6, "4": 3})
    return Sampler(snap, params, targets, counters=c)


def test_snapshot_is_the_hand_computed_graph(value_sampler):
    s = value_sampler.snapshot
    assert s.kp_popularity.tolist() == [3, 3, 2, 2, 1]
    assert s.kp_discipline.tolist() == [1, 1, 2, 0, 0]
    assert s.kp_difficulty().tolist() == [1, 1, 2, 3, 4]


def test_value_walker_probabilities_are_exact(value_sampler):
    # V = pop / (1 + cov) = [3, 3, 1, 2, 1]. Cells (discipline/grade): math/1 = {a, b}, physics/2 = {c},
    # history/3 = {d}, history/4 = {e}.
    # Discipline feedback: realised path shares history 0, math .75, physics .25 vs targets 1/3:
    # (t / max(.01, r))^1 = 33.3 -> clipped to 4 (history), .444 (math), 1.333 (physics); the aim ∝ t * f is
    # history 9/13, math 1/13, physics 3/13. Grades: no graded path counted, so the aim is the target
    # [1, 3, 6, 3] / 13, which agrees. So the start mass V*D is a + b = 1/13, c 3/13, d 6/13, e 3/13:
    # V*D ∝ [1, 1, 6, 12, 6] / 26.
    s = value_sampler
    np.testing.assert_allclose(s.value(), [3, 3, 1, 2, 1], rtol=1e-12)
    w = s.walker()
    np.testing.assert_allclose(start_probabilities(w), np.array([1, 1, 6, 12, 6]) / 26, rtol=1e-9)
    g = s.graph
    # From b: a (w^2 = 4, V*D 1), c (1, 6), d (1, 12).
    nbr, p = transition_probabilities(g, w, B, [B])
    assert nbr.tolist() == [A, C, D]
    np.testing.assert_allclose(p, np.array([4, 6, 12]) / 22, rtol=1e-9)
    # From b with d visited: a 4, c 6.
    nbr, p = transition_probabilities(g, w, B, [B, D])
    np.testing.assert_allclose(p, [0.4, 0.6, 0.0], rtol=1e-9)
    # From d: b 1, c 6, e 6.
    nbr, p = transition_probabilities(g, w, D, [D])
    assert nbr.tolist() == [B, C, E]
    np.testing.assert_allclose(p, np.array([1, 6, 6]) / 13, rtol=1e-9)


def test_value_walker_empirical_frequencies_match(value_sampler):
    rng = np.random.default_rng(7)
    w = value_sampler.walker()
    g = value_sampler.graph
    n = 200_000
    starts = draw_starts(w.start, n, rng)
    freq = np.bincount(starts, minlength=5) / n
    expected = np.array([1, 1, 6, 12, 6]) / 26
    for f, p in zip(freq, expected):
        assert abs(f - p) <= tolerance(p, n)
    # One step from b, nothing else visited / with d visited (masking), all walks together.
    cases = [([B], {A: 4 / 22, C: 6 / 22, D: 12 / 22}), ([B, D], {A: 0.4, C: 0.6})]
    for visited, exp in cases:
        vis = np.tile(np.array(visited), (n, 1))
        nxt = step(g, w, np.full(n, B), vis, rng)
        freq = np.bincount(nxt, minlength=5) / n
        for k in range(5):
            p = exp.get(k, 0.0)
            assert abs(freq[k] - p) <= tolerance(p, n), (visited, k, freq[k], p)


def test_walk_joint_distribution_of_first_step(value_sampler):
    """P(start=u, next=v) = start(u) * transition(u -> v) over whole walks of 2 KPs."""
    rng = np.random.default_rng(3)
    w = value_sampler.walker()
    g = value_sampler.graph
    n = 200_000
    paths, reached = walk(g, w, np.full(n, 2), rng)
    assert (reached == 2).all()
    start = start_probabilities(w)
    for u in range(5):
        nbr, p = transition_probabilities(g, w, u, [u])
        for v, pv in zip(nbr, p):
            exp = start[u] * pv
            got = np.mean((paths[:, 0] == u) & (paths[:, 1] == v))
            assert abs(got - exp) <= tolerance(exp, n), (u, v, got, exp)


def test_walks_never_revisit_and_stop_when_stuck(make_snapshot):
    # A path graph a-b-c: from c after a, b there is nowhere to go.
    snap = make_snapshot([("s0", ["a", "b"], "m", 1), ("s1", ["b", "c"], "m", 1)])
    s = Sampler(snap, WalkParams(min_kps=2, max_kps=6, min_seeds=1, max_seeds=2))
    batch = s.draw(2000)
    for kps in batch.kp_lists():
        assert len(set(kps)) == len(kps)
        assert 2 <= len(kps) <= 3


def test_uniform_walker_ignores_weights_and_values(value_sampler):
    value_sampler.set_params(walker="uniform")
    w = value_sampler.walker()
    g = value_sampler.graph
    np.testing.assert_allclose(start_probabilities(w), np.full(5, 0.2))
    nbr, p = transition_probabilities(g, w, B, [B])
    np.testing.assert_allclose(p, np.full(3, 1 / 3))
    n = 100_000
    nxt = step(g, w, np.full(n, B), np.full((n, 1), B), np.random.default_rng(1))
    freq = np.bincount(nxt, minlength=5) / n
    for k in (A, C, D):
        assert abs(freq[k] - 1 / 3) <= tolerance(1 / 3, n)


def test_weight_walker_uses_edge_weights_only(value_sampler):
    value_sampler.set_params(walker="weight")
    w = value_sampler.walker()
    np.testing.assert_allclose(start_probabilities(w), np.full(5, 0.2))
    nbr, p = transition_probabilities(value_sampler.graph, w, B, [B])
    np.testing.assert_allclose(p, np.array([4, 1, 1]) / 6)  # gamma = 2: w(a,b)^2 = 4


def test_same_seed_same_paths(make_snapshot):
    from tests.sampler.sampler_graphs import random_seeds

    snap = make_snapshot(random_seeds(500, 80, np.random.default_rng(0)))
    a = Sampler(snap, WalkParams(batch_size=300), rng_seed=11).draw(1000)
    b = Sampler(snap, WalkParams(batch_size=300), rng_seed=11).draw(1000)
    c = Sampler(snap, WalkParams(batch_size=300), rng_seed=12).draw(1000)
    assert a.kp_lists() == b.kp_lists() and a.seed_lists() == b.seed_lists()
    assert a.kp_lists() != c.kp_lists()


def test_whole_graph_rows_give_the_same_exact_step(value_sampler):
    """With the rows normalised once for the whole graph (rejection of visited draws, then the gathered fallback),
    a step samples the same distribution, and the returned CSR positions are the edges taken."""
    rng = np.random.default_rng(5)
    w = value_sampler.walker()
    g = value_sampler.graph
    rows = row_mass(g, w)
    n = 200_000
    # From b with d visited (d holds 12/22 of b's mass: many rejections, some walks fall back to gathering).
    for visited, cur in (([B], B), ([B, D], B), ([D, B], D), ([E, D], D)):
        vis = np.tile(np.array(visited), (n, 1))
        nxt, pos = step_with_positions(g, w, np.full(n, cur), vis, rng, rows)
        assert (g.indices[pos] == nxt).all() and (pos >= g.indptr[cur]).all() and (pos < g.indptr[cur + 1]).all()
        nbr, p = transition_probabilities(g, w, cur, visited)
        freq = np.bincount(nxt, minlength=5) / n
        for k, pk in zip(nbr, p):
            assert abs(freq[k] - pk) <= tolerance(pk, n), (visited, k, freq[k], pk)


def test_stuck_walks_stop_on_whole_graph_rows(make_snapshot):
    snap = make_snapshot([("s0", ["a", "b"], "m", 1), ("s1", ["b", "c"], "m", 1)])
    s = Sampler(snap, WalkParams(min_kps=2, max_kps=6, min_seeds=1, max_seeds=2))
    w = s.walker()
    rows = row_mass(s.graph, w)
    paths, reached, pos = walk_with_positions(s.graph, w, np.full(3000, 6), np.random.default_rng(0), rows)
    assert reached.max() == 3 and reached.min() >= 2
    for row, k, ps in zip(paths, reached, pos):
        assert len(set(row[:k].tolist())) == k
        assert (s.graph.indices[ps[: k - 1]] == row[1:k]).all()
