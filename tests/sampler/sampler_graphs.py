"""Tiny hand-built graph snapshots for the sampler tests (independent of the graph service's builder)."""

from __future__ import annotations

import itertools

import numpy as np
from linksyn.common.snapshots.graph import GraphSnapshot, StringTable


def build_snapshot(
    seeds: list[tuple[str, list[str], str, int]], version: int = 1, disciplines: list[str] | None = None
) -> GraphSnapshot:
    """A snapshot from (seed id, KP texts, discipline, difficulty 1..5) rows: KPs in first-seen order, an edge
    between two KPs per seed they share, weight = number of such seeds."""
    kp_ids: dict[str, int] = {}
    for _, kps, _, _ in seeds:
        for k in kps:
            kp_ids.setdefault(k, len(kp_ids))
    disciplines = disciplines or sorted({d for _, _, d, _ in seeds})
    n = len(kp_ids)
    pop = np.zeros(n, np.int64)
    hist = np.zeros((n, 5), np.int64)
    disc_votes = np.zeros((n, len(disciplines)), np.int64)
    kp_seeds: list[list[int]] = [[] for _ in range(n)]
    w: dict[tuple[int, int], int] = {}
    for s, (_, kps, disc, diff) in enumerate(seeds):
        ids = sorted({kp_ids[k] for k in kps})
        for i in ids:
            pop[i] += 1
            hist[i, diff - 1] += 1
            disc_votes[i, disciplines.index(disc)] += 1
            kp_seeds[i].append(s)
        for a, b in itertools.combinations(ids, 2):
            w[(a, b)] = w.get((a, b), 0) + 1
    rows: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for (a, b), c in w.items():
        rows[a].append((b, c))
        rows[b].append((a, c))
    indptr = np.zeros(n + 1, np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.array([v for r in rows for v, _ in sorted(r)], np.int32)
    weights = np.array([c for r in rows for _, c in sorted(r)], np.float32)
    ks_indptr = np.zeros(n + 1, np.int64)
    ks_indptr[1:] = np.cumsum([len(x) for x in kp_seeds])
    sk = [sorted({kp_ids[k] for k in kps}) for _, kps, _, _ in seeds]
    sk_indptr = np.zeros(len(seeds) + 1, np.int64)
    sk_indptr[1:] = np.cumsum([len(x) for x in sk])
    return GraphSnapshot(
        version=version,
        offsets={},
        disciplines=disciplines,
        kp_text=StringTable.from_list(list(kp_ids)),
        kp_discipline=disc_votes.argmax(axis=1).astype(np.int32),
        kp_difficulty_hist=hist,
        kp_popularity=pop,
        indptr=indptr,
        indices=indices,
        weights=weights,
        kp_seed_indptr=ks_indptr,
        kp_seed_indices=np.array([s for x in kp_seeds for s in x], np.int32),
        seed_ids=StringTable.from_list([sid for sid, _, _, _ in seeds]),
        seed_kp_indptr=sk_indptr,
        seed_kp_indices=np.array([k for x in sk for k in x], np.int32),
        seed_discipline=np.array([disciplines.index(d) for _, _, d, _ in seeds], np.int32),
        seed_difficulty=np.array([d for _, _, _, d in seeds], np.int8),
        seed_question=StringTable.from_list([f"question of {sid}?" for sid, _, _, _ in seeds]),
        seed_answer=StringTable.from_list([f"answer of {sid}" for sid, _, _, _ in seeds]),
    )


def random_seeds(
    n_seeds: int, n_kps: int, rng: np.random.Generator, disciplines: tuple[str, ...] = ("math", "physics", "history"),
    kps_per_seed: tuple[int, int] = (2, 5), zipf: float = 1.1,
) -> list[tuple[str, list[str], str, int]]:
    """Seeds with Zipf-popular KPs; a KP's discipline is fixed (kp index mod #disciplines), so disciplines cluster."""
    p = 1.0 / np.arange(1, n_kps + 1) ** zipf
    p /= p.sum()
    out = []
    for s in range(n_seeds):
        k = int(rng.integers(kps_per_seed[0], kps_per_seed[1] + 1))
        first = int(rng.choice(n_kps, p=p))
        disc = first % len(disciplines)
        same = np.flatnonzero(np.arange(n_kps) % len(disciplines) == disc)
        ps = p[same] / p[same].sum()
        kps = {first, *rng.choice(same, size=k - 1, p=ps).tolist()}
        out.append((f"s{s}", [f"kp{i}" for i in sorted(kps)], disciplines[disc], int(rng.integers(1, 6))))
    return out


