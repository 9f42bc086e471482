"""The sampler over random graphs: targets, the value function's knobs, seed linkage, counters and restarts."""

from __future__ import annotations

import numpy as np
import pytest
from linksyn.common.modes import HARD, MODE_NAMES, MULTI_GRADE
from linksyn.sampler.counters import Counters
from linksyn.sampler.records import path_json, path_records
from linksyn.sampler.sampler import Sampler, WalkParams
from linksyn.sampler.state import load_state, save_state
from linksyn.sampler.targets import Targets
from linksyn.sampler.value import total_variation

from tests.sampler.sampler_graphs import random_seeds


@pytest.fixture(scope="module")
def graph():
    from tests.sampler.sampler_graphs import build_snapshot

    return build_snapshot(random_seeds(4000, 1500, np.random.default_rng(0)))


def test_discipline_targets_are_respected(graph):
    target = {"math": 0.6, "physics": 0.3, "history": 0.1}
    s = Sampler(graph, WalkParams(), Targets(discipline=target))
    s.draw(20_000)
    disc_target, _ = s.resolved_targets()
    realised, _ = s.realised_shares()
    tv = total_variation(disc_target, realised)
    assert tv < 0.02, (tv, s.stats()["discipline"])
    # Without the gate the mix is far from that target: the gate did the work.
    free = Sampler(graph, WalkParams(gate=False), Targets(discipline=target))
    free.draw(20_000)
    assert total_variation(disc_target, free.realised_shares()[0]) > 0.1


def mean_popularity(s: Sampler, n: int) -> float:
    b = s.draw(n)
    kps = b.kps[b.kps >= 0]
    return float(s.snapshot.kp_popularity[kps].mean())


def test_alpha_raises_mean_popularity(graph):
    means = [mean_popularity(Sampler(graph, WalkParams(alpha=a, beta=0.0, gate=False)), 5000) for a in (-0.5, 0.0, 1.0)]
    assert means[0] < means[1] < means[2], means


def test_beta_raises_coverage(graph):
    cov = []
    for beta in (0.0, 1.0, 3.0):
        s = Sampler(graph, WalkParams(alpha=1.0, beta=beta, gate=False))
        s.draw(3000)
        cov.append(float((s.counters.kp_cov > 0).mean()))
    assert cov[0] < cov[1] < cov[2], cov


def test_consecutive_seeds_share_a_kp_and_contain_a_path_edge(graph):
    s = Sampler(graph, WalkParams(min_seeds=3, max_seeds=5))
    b = s.draw(3000)
    sk = graph.seed_kp_indptr
    kps_of = lambda seed: set(graph.seed_kp_indices[sk[seed] : sk[seed + 1]].tolist())  # noqa: E731
    for kps, seeds in zip(b.kp_lists(), b.seed_lists()):
        assert 1 <= len(seeds) <= 5 and len(set(seeds)) == len(seeds)
        edges = [{u, v} for u, v in zip(kps, kps[1:])]
        for sd in seeds:
            assert any(e <= kps_of(sd) for e in edges)
        for x, y in zip(seeds, seeds[1:]):
            assert kps_of(x) & kps_of(y)
    # Seeds are gathered up to k where the path's edges have enough shared seeds.
    assert (b.n_seeds >= 3).mean() > 0.5


def test_least_used_seed_first(make_snapshot):
    snap = make_snapshot([(f"s{i}", ["a", "b"], "m", 1) for i in range(10)])
    s = Sampler(snap, WalkParams(min_seeds=1, max_seeds=1, batch_size=1000, min_batch=1000,
                                 mode_mix={"multi_grade": 1.0}))
    s.draw(30)
    assert s.counters.seed_use.tolist() == [3] * 10
    s.draw(5)
    assert sorted(s.counters.seed_use.tolist()) == [3] * 5 + [4] * 5


def test_preview_counts_nothing(graph):
    s = Sampler(graph, WalkParams())
    s.draw(100)
    before = (s.counters.kp_cov.copy(), s.counters.seed_use.copy(), s.counters.paths_emitted)
    s.draw(500, commit=False)
    assert (s.counters.kp_cov == before[0]).all() and (s.counters.seed_use == before[1]).all()
    assert s.counters.paths_emitted == before[2]


def test_restart_keeps_counters(graph, tmp_path):
    s = Sampler(graph, WalkParams(), Targets(discipline={"math": 0.5, "physics": 0.5}))
    s.draw(2000)
    save_state(tmp_path / "state.npz", s.counters, graph, s.targets)
    counters, targets = load_state(tmp_path / "state.npz", graph)
    r = Sampler(graph, WalkParams(), targets, counters=counters)
    assert (r.counters.kp_cov == s.counters.kp_cov).all()
    assert (r.counters.seed_use == s.counters.seed_use).all()
    assert r.counters.paths_emitted == 2000
    assert r.counters.discipline_counts == s.counters.discipline_counts
    assert r.counters.difficulty_counts == s.counters.difficulty_counts
    assert r.targets == s.targets
    # Path numbers continue, so ids of new paths do not repeat old ones.
    assert int(r.draw(1).number[0]) == 2000


def test_swap_carries_counters_by_name(make_snapshot):
    seeds = [("s0", ["a", "b"], "m", 1), ("s1", ["b", "c"], "m", 2), ("s2", ["c", "d"], "p", 3)]
    old = make_snapshot(seeds)
    s = Sampler(old, WalkParams(min_seeds=1, max_seeds=1, mode_mix={"hard": 1.0}))
    s.draw(200)
    named_before = s.counters.named(old)
    # The new snapshot has another KP first (ids shift), one more seed, and drops nothing.
    new = make_snapshot([("s9", ["z", "a"], "p", 4)] + seeds, version=2)
    s.swap(new)
    assert s.snapshot.version == 2
    kp, sd = s.counters.named(new)
    assert kp == named_before[0] and sd == named_before[1]
    assert s.counters.kp_cov[new.kp_text.to_list().index("z")] == 0
    # A KP that disappears is kept aside and returns with its count.
    smaller = make_snapshot(seeds[:2], version=3)
    s.swap(smaller)
    assert s.counters.dormant_kp.get("d") == named_before[0]["d"]
    s.swap(new)
    assert s.counters.named(new)[0] == named_before[0]


def test_path_records_carry_full_seed_qa(graph):
    s = Sampler(graph, WalkParams())
    b = s.draw(50)
    recs = path_records(b, graph)
    assert len({r.id for r in recs}) == 50
    for r, kps, seeds in zip(recs, b.kp_lists(), b.seed_lists()):
        assert list(r.kps) == [graph.kp_text[k] for k in kps]
        assert [p.id for p in r.seeds] == [graph.seed_ids[x] for x in seeds]
        for p in r.seeds:
            assert p.question and p.answer and p.kps and p.discipline
        assert r.mode in MODE_NAMES and r.walker == "value"
        assert len(r.scores) == len(r.kps) and all(x > 0 for x in r.scores)
        assert r.target_discipline in graph.disciplines and 1 <= r.target_difficulty <= 5
        j = path_json(r)
        assert set(j["seeds"][0]) >= {"id", "question", "answer", "knowledge_points"}
    # Same sampler seed, same records (ids are deterministic).
    again = path_records(Sampler(graph, WalkParams()).draw(50), graph)
    assert [r.id for r in again] == [r.id for r in recs]


def test_mode_mix_is_followed(graph):
    s = Sampler(graph, WalkParams(mode_mix={"link": 0.5, "hard": 0.5}))
    b = s.draw(4000)
    share_hard = float((b.mode == HARD).mean())
    assert abs(share_hard - 0.5) < 5 * np.sqrt(0.25 / 4000)
    assert not (b.mode == MULTI_GRADE).any()


def test_targets_that_select_nothing_are_refused(graph):
    with pytest.raises(ValueError, match="no weight to any class"):
        Sampler(graph, WalkParams(), Targets(discipline={"chemistry": 1.0}))


def test_counters_must_fit_the_snapshot(graph, make_snapshot):
    other = make_snapshot([("s0", ["a", "b"], "m", 1)])
    with pytest.raises(ValueError, match="counters are sized"):
        Sampler(graph, WalkParams(), counters=Counters.empty(other))


def test_value_walker_covers_more_kps_than_the_baselines(graph):
    """At equal path counts below saturation (0.2x and 0.5x as many paths as KPs), with the default parameters."""
    for n in (300, 750):
        cov = {}
        for walker in ("value", "uniform", "weight"):
            s = Sampler(graph, WalkParams(walker=walker))
            s.draw(n)
            cov[walker] = float((s.counters.kp_cov > 0).mean())
        assert cov["value"] > max(cov["uniform"], cov["weight"]) + 0.02, (n, cov)
