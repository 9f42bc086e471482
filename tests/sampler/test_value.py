"""The gate's pieces: raking onto two marginals, the feedback aim, and closed-loop convergence on skewed graphs."""

from __future__ import annotations

import numpy as np
import pytest
from tests.sampler.sampler_graphs import build_snapshot, random_seeds

from linksyn.graph.build import KPGraph, SeedBatch
from linksyn.sampler.sampler import Sampler, WalkParams
from linksyn.sampler.targets import Targets
from linksyn.sampler.value import feedback_targets, rake, total_variation


def test_rake_meets_both_marginals_and_leaves_unknown_alone():
    rng = np.random.default_rng(0)
    mass = rng.random((4, 6)) * np.array([[50], [1], [5], [3]])  # rows 0..2 known, row 3 unknown discipline
    rt = np.array([0.2, 0.5, 0.3])
    ct = np.array([0.1, 0.1, 0.2, 0.3, 0.3])
    a, b = rake(mass, rt, ct)
    m = mass * np.append(a, 1.0)[:, None] * np.append(b, 1.0)[None, :]
    rows = m[:3].sum(axis=1)
    cols = m[:, :5].sum(axis=0)
    np.testing.assert_allclose(rows / rows.sum(), rt, atol=1e-8)
    np.testing.assert_allclose(cols / cols.sum(), ct, atol=1e-8)


def test_rake_single_attribute_is_target_over_mass_share():
    mass = np.array([[6.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 0.0]])  # no grades at all (C = 1 unknown column)
    t = np.array([0.5, 0.25, 0.25])
    a, b = rake(mass, t, np.array([1.0]))
    assert len(b) == 1
    # Single attribute: the factor is target / share of the mass (up to a common scale).
    share = np.array([6.0, 1.0, 3.0]) / 10
    np.testing.assert_allclose(a / a[0], (t / share) / (t[0] / share[0]), rtol=1e-9)


def test_rake_zero_target_class_gets_zero():
    mass = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    a, _ = rake(mass, np.array([1.0, 0.0]), np.array([1.0]))
    assert a[1] == 0 and a[0] > 0


def test_feedback_boosts_lagging_class_within_clip_and_is_off_before_any_path():
    t = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(feedback_targets(t, np.zeros(3), 1e-3, 2.0, 4.0), t)
    aim = feedback_targets(t, np.array([0.6, 0.3, 0.1]), 1e-3, 2.0, 4.0)
    assert aim[2] > t[2] and aim[0] < t[0] and aim.sum() == pytest.approx(1.0)
    # (0.2 / 0.001)^2 is clipped to 4: an unseen class gets at most 4x (relative) weight.
    aim = feedback_targets(t, np.array([0.7, 0.3, 0.0]), 1e-3, 2.0, 4.0)
    f = aim / t
    assert f[2] / f[1] == pytest.approx(4.0)


def skewed_graph():
    """Disciplines of very different size: 'big' holds ~80% of the KPs and seeds (as mathematics does in the real
    seed set), 'mid' and 'tiny' the rest."""
    rng = np.random.default_rng(1)
    seeds = random_seeds(3000, 1200, rng, disciplines=("big", "big2", "big3", "big4", "mid", "tiny"))
    names = {"big2": "big", "big3": "big", "big4": "big"}
    return build_snapshot([(s, k, names.get(d, d), g) for s, k, d, g in seeds])


@pytest.mark.parametrize("target", [{"big": 1 / 3, "mid": 1 / 3, "tiny": 1 / 3}, {"big": 0.1, "mid": 0.2, "tiny": 0.7}])
def test_realised_path_shares_converge_to_target_on_a_skewed_graph(target):
    snap = skewed_graph()
    grades = {"1": 0.4, "2": 0.3, "3": 0.1, "4": 0.1, "5": 0.1}
    s = Sampler(snap, WalkParams(), Targets(discipline=target, difficulty=grades))
    s.draw(8000)
    t_disc, t_diff = s.resolved_targets()
    r_disc, r_diff = s.realised_shares()
    assert total_variation(t_disc, r_disc) < 0.02, s.stats()["discipline"]
    assert total_variation(t_diff, r_diff) < 0.02, s.stats()["difficulty"]
    # The realised shares are those of the emitted paths' start KPs, i.e. of their target_discipline field.
    # Without the gate the mix follows the graph (mostly 'big'), far from the target.
    free = Sampler(snap, WalkParams(gate=False), Targets(discipline=target))
    free.draw(8000)
    assert total_variation(t_disc, free.realised_shares()[0]) > 0.15


def test_path_class_is_its_start_kp_class_and_counts_follow_it(graph_small):
    s = Sampler(graph_small, WalkParams(), Targets(discipline={"math": 0.5, "physics": 0.3, "history": 0.2}))
    b = s.draw(3000)
    np.testing.assert_array_equal(b.discipline, graph_small.kp_discipline[b.kps[:, 0]])
    np.testing.assert_array_equal(b.difficulty, graph_small.kp_difficulty()[b.kps[:, 0]])
    counts = np.bincount(b.discipline, minlength=3)
    assert s.counters.discipline_counts == {d: int(c) for d, c in zip(graph_small.disciplines, counts) if c}


@pytest.fixture(scope="module")
def graph_small():
    return build_snapshot(random_seeds(1500, 500, np.random.default_rng(2)))


def test_kps_of_unknown_discipline_walk_but_do_not_count():
    # Half of the seeds carry no discipline: their KPs have discipline -1, gate factor 1, and paths starting on
    # them are not counted in the realised shares (their target_discipline is unknown).
    rng = np.random.default_rng(3)
    seeds = random_seeds(2000, 600, rng)
    ids = [s for s, _, _, _ in seeds]
    kps = [k if i % 2 == 0 else [f"u-{x}" for x in k] for i, (_, k, _, _) in enumerate(seeds)]
    disc = [d if i % 2 == 0 else "" for i, (_, _, d, _) in enumerate(seeds)]
    g = KPGraph()
    g.ingest(SeedBatch.from_lists(ids, kps, disc, [x for *_, x in seeds]))
    snap = g.to_snapshot(1)
    assert (snap.kp_discipline < 0).sum() > 100
    target = {"math": 0.2, "physics": 0.2, "history": 0.6}
    s = Sampler(snap, WalkParams(), Targets(discipline=target))
    b = s.draw(6000)
    unknown = b.discipline < 0
    assert 0.2 < unknown.mean() < 0.8  # unknown KPs still start and carry walks
    assert sum(s.counters.discipline_counts.values()) == int((~unknown).sum())
    t, r = s.resolved_targets()[0], s.realised_shares()[0]
    assert total_variation(t, r) < 0.02, s.stats()["discipline"]
