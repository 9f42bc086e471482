"""Structure and analysis of a graph snapshot with igraph: components, degree and weight distributions, communities.

Pure functions over a GraphSnapshot (no I/O). Degree and weight statistics are read straight off the CSR arrays;
igraph does what needs graph algorithms (components, Leiden / multilevel community detection, GraphML export).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import igraph as ig
import numpy as np
from linksyn.common.snapshots.graph import GraphSnapshot, StringTable
from linksyn.graph.build import KPGraph


def upper_edges(snap: GraphSnapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, weight) of each undirected edge once (u < v), from the symmetric CSR."""
    rows = np.repeat(np.arange(snap.n_kps, dtype=np.int64), np.diff(snap.indptr))
    cols = snap.indices.astype(np.int64)
    upper = rows < cols
    return rows[upper], cols[upper], snap.weights[upper]


def to_igraph(snap: GraphSnapshot | KPGraph, attributes: bool = True) -> ig.Graph:
    """An undirected igraph Graph: vertex i is KP i; edge attribute `weight`; with `attributes`, vertex attributes
    `name` (KP text), `popularity`, `discipline` (name, "" if unknown), `difficulty` (modal grade, 0 unknown).
    A live KPGraph is read through a snapshot of it (version 0)."""
    if isinstance(snap, KPGraph):
        snap = snap.to_snapshot(0)
    u, v, w = upper_edges(snap)
    g = ig.Graph(n=snap.n_kps, edges=np.column_stack([u, v]), directed=False)
    g.es["weight"] = w.astype(np.float64)
    if attributes:
        names = snap.disciplines
        g.vs["name"] = snap.kp_text.to_list()
        g.vs["popularity"] = snap.kp_popularity.tolist()
        g.vs["discipline"] = [names[d] if d >= 0 else "" for d in snap.kp_discipline.tolist()]
        g.vs["difficulty"] = snap.kp_difficulty().tolist()
    return g


@dataclass(frozen=True)
class Components:
    count: int
    largest: int
    """KPs in the largest connected component."""
    isolated: int
    """KPs with no edge (components of size 1)."""
    membership: np.ndarray


def components(snap: GraphSnapshot) -> Components:
    cc = to_igraph(snap, attributes=False).connected_components(mode="weak")
    sizes = np.asarray(cc.sizes(), dtype=np.int64)
    return Components(
        count=len(sizes),
        largest=int(sizes.max()) if len(sizes) else 0,
        isolated=int((sizes == 1).sum()),
        membership=np.asarray(cc.membership, dtype=np.int64),
    )


def summary(values: np.ndarray) -> dict[str, float]:
    """min / mean / median / p99 / max of a distribution (zeros for an empty one)."""
    if len(values) == 0:
        return {"min": 0.0, "mean": 0.0, "median": 0.0, "p99": 0.0, "max": 0.0}
    v = np.asarray(values, dtype=np.float64)
    return {
        "min": float(v.min()),
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "p99": float(np.percentile(v, 99)),
        "max": float(v.max()),
    }


def degree_stats(snap: GraphSnapshot) -> dict[str, dict[str, float]]:
    """Distributions of degree, weighted degree (strength) and edge weight."""
    deg = np.diff(snap.indptr)
    strength = np.add.reduceat(snap.weights.astype(np.float64), snap.indptr[:-1]) if len(snap.weights) else deg * 0.0
    strength = np.where(deg > 0, strength, 0.0)  # reduceat repeats the next value for empty rows
    return {"degree": summary(deg), "strength": summary(strength), "weight": summary(upper_edges(snap)[2])}


def top_kps(snap: GraphSnapshot, k: int = 10) -> list[tuple[str, int]]:
    """The k most popular KPs (text, seeds), most popular first, ties by id."""
    order = np.lexsort((np.arange(snap.n_kps), -snap.kp_popularity))[:k]
    return [(snap.kp_text[int(i)], int(snap.kp_popularity[i])) for i in order]


@dataclass(frozen=True)
class Communities:
    membership: np.ndarray
    count: int
    modularity: float


def communities(
    snap: GraphSnapshot, method: Literal["leiden", "multilevel"] = "leiden", resolution: float = 1.0, seed: int = 0
) -> Communities:
    """Weighted community detection on demand (Leiden optimising modularity, or Louvain's multilevel)."""
    import random

    g = to_igraph(snap, attributes=False)
    random.seed(seed)  # igraph's community algorithms draw from Python's RNG
    ig.set_random_number_generator(random)
    if method == "leiden":
        part = g.community_leiden(objective_function="modularity", weights="weight", resolution=resolution, n_iterations=-1)
    elif method == "multilevel":
        part = g.community_multilevel(weights="weight", resolution=resolution)
    else:
        raise ValueError(f"community method must be 'leiden' or 'multilevel', got {method!r}")
    membership = np.asarray(part.membership, dtype=np.int64)
    return Communities(membership, int(membership.max() + 1) if len(membership) else 0, float(g.modularity(part.membership, weights="weight")))


def canonical_form(snap: GraphSnapshot) -> GraphSnapshot:
    """The same graph relabelled independently of arrival order: KPs by text, seeds by id, disciplines by name.

    Two graphs fed the same seeds in different interleavings (e.g. Kafka partitions read in another order after a
    restart) have equal canonical forms.
    """
    texts = snap.kp_text.to_list()
    kp_order = np.argsort(np.array(texts, dtype=object), kind="stable") if texts else np.zeros(0, np.int64)
    new_kp = np.empty(snap.n_kps, dtype=np.int64)
    new_kp[kp_order] = np.arange(snap.n_kps)
    seeds = snap.seed_ids.to_list()
    seed_order = np.argsort(np.array(seeds, dtype=object), kind="stable") if seeds else np.zeros(0, np.int64)
    new_seed = np.empty(snap.n_seeds, dtype=np.int64)
    new_seed[seed_order] = np.arange(snap.n_seeds)
    names = snap.disciplines
    d_order = sorted(range(len(names)), key=names.__getitem__)
    d_lut = np.empty(len(names) + 1, dtype=np.int32)  # index -1 (unknown) hits the last slot
    d_lut[d_order] = np.arange(len(names))
    d_lut[-1] = -1

    def relabel_csr(indptr, indices, row_map, col_map, data=None):
        rows = row_map[np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))]
        cols = col_map[indices.astype(np.int64)]
        order = np.lexsort((cols, rows))
        new_indptr = np.zeros(len(indptr), dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(indptr) - 1), out=new_indptr[1:])
        return new_indptr, cols[order].astype(indices.dtype), (data[order] if data is not None else None)

    indptr, indices, weights = relabel_csr(snap.indptr, snap.indices, new_kp, new_kp, snap.weights)
    ks_indptr, ks_indices, _ = relabel_csr(snap.kp_seed_indptr, snap.kp_seed_indices, new_kp, new_seed)
    sk_indptr, sk_indices, _ = relabel_csr(snap.seed_kp_indptr, snap.seed_kp_indices, new_seed, new_kp)
    reorder = lambda t, order: StringTable.from_list([t[i] for i in order.tolist()])  # noqa: E731
    return GraphSnapshot(
        version=snap.version,
        offsets=snap.offsets,
        disciplines=[names[i] for i in d_order],
        kp_text=reorder(snap.kp_text, kp_order),
        kp_discipline=d_lut[snap.kp_discipline[kp_order]],
        kp_difficulty_hist=snap.kp_difficulty_hist[kp_order],
        kp_popularity=snap.kp_popularity[kp_order],
        indptr=indptr,
        indices=indices,
        weights=weights,
        kp_seed_indptr=ks_indptr,
        kp_seed_indices=ks_indices,
        seed_ids=reorder(snap.seed_ids, seed_order),
        seed_kp_indptr=sk_indptr,
        seed_kp_indices=sk_indices,
        seed_discipline=d_lut[snap.seed_discipline[seed_order]],
        seed_difficulty=snap.seed_difficulty[seed_order],
        seed_question=reorder(snap.seed_question, seed_order),
        seed_answer=reorder(snap.seed_answer, seed_order),
        meta=snap.meta,
    )
