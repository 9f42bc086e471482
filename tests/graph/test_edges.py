"""The compiled edge kernels (linksyn.graph.edges) against plain Python references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from linksyn.graph.edges import count_into, seed_pairs, sort_keys


def run_seed_pairs(seeds: list[list[int]], base: int = 0, pending: int = 0):
    kp = np.array([k for ks in seeds for k in ks], dtype=np.int64)
    lengths = np.array([len(ks) for ks in seeds], dtype=np.int64)
    pair_seed, pair_kp = np.empty(len(kp), np.int32), np.empty(len(kp), np.int32)
    n_kp = np.empty(len(seeds), np.int64)
    keys = np.full(pending + int((lengths * (lengths - 1) // 2).sum()), -1, np.int64)
    n_pairs, n_keys = seed_pairs(kp, lengths, base, pair_seed, pair_kp, n_kp, keys, pending)
    return pair_seed[:n_pairs], pair_kp[:n_pairs], n_kp, keys, n_keys


def test_seed_pairs_sorts_dedups_and_enumerates_every_pair_once():
    seeds = [[9, 1, 5, 3], [4], [], [7, 2, 7, 2, 7], [6, 6]]
    pair_seed, pair_kp, n_kp, keys, n_keys = run_seed_pairs(seeds, base=10, pending=3)
    assert n_kp.tolist() == [4, 1, 0, 2, 1]
    assert pair_kp.tolist() == [1, 3, 5, 9, 4, 2, 7, 6]
    assert pair_seed.tolist() == [10, 10, 10, 10, 11, 13, 13, 14]
    assert keys[:3].tolist() == [-1, -1, -1]  # the keys already pending are left alone
    pairs = [(int(k) >> 32, int(k) & 0xFFFFFFFF) for k in keys[3:n_keys]]
    assert pairs == [(1, 3), (1, 5), (1, 9), (3, 5), (3, 9), (5, 9), (2, 7)]


def test_seed_pairs_against_a_reference_including_seeds_with_many_kps():
    rng = np.random.default_rng(1)
    # up to 80 KPs a seed: past 32 the kernel sorts with np.sort instead of an insertion sort
    seeds = [rng.integers(0, 60, int(rng.choice([0, 1, 3, 8, 33, 80]))).tolist() for _ in range(300)]
    pair_seed, pair_kp, n_kp, keys, n_keys = run_seed_pairs(seeds)
    expected = [sorted(set(ks)) for ks in seeds]
    assert n_kp.tolist() == [len(e) for e in expected]
    assert pair_kp.tolist() == [k for e in expected for k in e]
    assert pair_seed.tolist() == [i for i, e in enumerate(expected) for _ in e]
    want = [(a << 32) | b for e in expected for a, b in itertools.combinations(e, 2)]
    assert keys[:n_keys].tolist() == want


@pytest.mark.parametrize("u_max, v_max", [(1, 1), (2, 2**12), (2**11, 3), (2**19, 2**19), (2**31 - 1, 2**31 - 1)])
def test_sort_keys_is_a_sort(u_max, v_max):
    # different numbers of radix passes (odd ones end in the scratch buffer and are copied back), constant digits
    rng = np.random.default_rng(u_max + v_max)
    keys = (rng.integers(0, u_max, 20_000).astype(np.int64) << 32) | rng.integers(0, v_max, 20_000)
    got = keys.copy()
    sort_keys(got, np.empty(len(keys) + 5, np.int64))
    assert np.array_equal(got, np.sort(keys))


@pytest.mark.parametrize("keys", [[], [7], [5, 5, 5], [(3 << 32) | 1, 2, (3 << 32) | 1, 0]])
def test_sort_keys_small_inputs(keys):
    got = np.array(keys, dtype=np.int64)
    sort_keys(got, np.empty(len(keys), np.int64))
    assert got.tolist() == sorted(keys)


def test_count_into_matches_a_counter_across_many_merges():
    rng = np.random.default_rng(2)
    table_k, table_w, n = np.zeros(0, np.int64), np.zeros(0, np.int32), 0
    ref: dict[int, int] = {}
    for step in range(40):
        m = int(rng.integers(0, 4000))
        span = int(rng.choice([3, 100, 10_000]))
        keys = (rng.integers(0, span, m).astype(np.int64) << 32) | rng.integers(0, span, m)
        for k in keys.tolist():
            ref[k] = ref.get(k, 0) + 1
        scratch = np.empty(m, np.int64)
        sort_keys(keys, scratch)
        table_k, table_w, n = count_into(table_k, table_w, n, keys, scratch)
        assert n == len(ref) and len(table_k) >= n
        assert table_k[:n].tolist() == sorted(ref), step
        assert table_w[:n].tolist() == [ref[k] for k in sorted(ref)], step


def test_count_into_keeps_the_table_when_it_has_room():
    k, w, n = count_into(np.zeros(0, np.int64), np.zeros(0, np.int32), 0, np.array([1, 1, 4]), np.empty(3, np.int64))
    assert (k[:n].tolist(), w[:n].tolist(), len(k)) == ([1, 4], [2, 1], 4)  # room for twice the edges
    k2, w2, n2 = count_into(k, w, n, np.array([0, 4]), np.empty(2, np.int64))
    assert k2 is k and w2 is w  # merged in place
    assert (k2[:n2].tolist(), w2[:n2].tolist()) == ([0, 1, 4], [1, 2, 2])
