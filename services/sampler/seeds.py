"""Seeds strongly linked by a path: for each step u->v, a seed that contains both u and v, least-used first.

`EdgeSeedIndex` is the intersection of the KP->seed rows of every edge, computed once per snapshot from the
seed->KP rows (O(sum over seeds of kps^2), vectorised): edge_seeds(u, v) is one slice, so a step costs
O(min(shared seeds, seed_scan_cap)) instead of intersecting two long KP->seed rows.

Order of seeds on a path: edges are visited forward, then backward, then forward... (e0 e1 e2 e2 e1 e0 e0 ...), one
seed per visit, until the path has k seeds or a whole cycle found no unused shared seed; the seeds are then
chained so that every consecutive pair shares a path KP (see `_chain`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_USE_CAP = (1 << 20) - 1
"""Seed use counts rank as min(use, _USE_CAP - 1) when picking: beyond a million uses a seed is 'much used'."""


@dataclass(frozen=True)
class EdgeSeedIndex:
    """Seeds shared by the two ends of each undirected edge, keyed by the CSR position of (min(u,v), max(u,v))."""

    n_nodes: int
    edge_key: np.ndarray  # int64 (nnz,): row * n + neighbour, sorted (CSR order)
    canon: np.ndarray  # int64 (nnz,): the position of the (min, max) twin of each CSR position
    indptr: np.ndarray  # int64 (nnz+1,): seeds of position p are seeds[indptr[p]:indptr[p+1]] (only u < v filled)
    seeds: np.ndarray  # int32
    seed_kp_indptr: np.ndarray  # int64 (n_seeds+1,): the snapshot's seed -> KP rows
    seed_kp_indices: np.ndarray  # int32

    @classmethod
    def build(
        cls,
        indptr: np.ndarray,
        indices: np.ndarray,
        seed_kp_indptr: np.ndarray,
        seed_kp_indices: np.ndarray,
        edge_key: np.ndarray | None = None,
    ) -> "EdgeSeedIndex":
        """edge_key: row * n + neighbour per CSR position, if the caller has it already (WalkGraph.keys)."""
        n = len(indptr) - 1
        nnz = len(indices)
        row = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        if edge_key is None:
            edge_key = row * n + indices.astype(np.int64)
        # The adjacency is symmetric, so its entries ordered by (column, row) are its CSR entries again: the
        # stable sort by column sends each position to its twin's.
        mirror = np.empty(nnz, dtype=np.int64)
        mirror[np.argsort(indices, kind="stable")] = np.arange(nnz, dtype=np.int64)
        canon = np.where(row < indices, np.arange(nnz, dtype=np.int64), mirror)
        counts = np.diff(seed_kp_indptr)
        pair_keys: list[np.ndarray] = []
        pair_seeds: list[np.ndarray] = []
        for r in np.unique(counts):
            if r < 2:
                continue
            sids = np.flatnonzero(counts == r)
            kps = seed_kp_indices[seed_kp_indptr[sids][:, None] + np.arange(r)].astype(np.int64)
            a_i, b_i = np.triu_indices(int(r), 1)
            a, b = kps[:, a_i], kps[:, b_i]
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            keep = lo != hi
            pair_keys.append((lo * n + hi)[keep])
            pair_seeds.append(np.broadcast_to(sids[:, None], a.shape)[keep])
        if pair_keys:
            keys = np.concatenate(pair_keys)
            sd = np.concatenate(pair_seeds).astype(np.int32)
            # Sorted needles make searchsorted walk edge_key once instead of jumping around it.
            order = np.lexsort((sd, keys))
            keys, sd = keys[order], sd[order]
            pos = np.searchsorted(edge_key, keys)
            if nnz:
                ok = (pos < nnz) & (edge_key[np.minimum(pos, nnz - 1)] == keys)
            else:
                ok = np.zeros(len(keys), bool)
            pos, sd = pos[ok], sd[ok]
            # A seed listing a KP twice would give a pair twice: keep one.
            if len(pos):
                first = np.ones(len(pos), dtype=bool)
                first[1:] = (pos[1:] != pos[:-1]) | (sd[1:] != sd[:-1])
                pos, sd = pos[first], sd[first]
        else:
            pos = np.empty(0, dtype=np.int64)
            sd = np.empty(0, dtype=np.int32)
        ip = np.zeros(nnz + 1, dtype=np.int64)
        np.cumsum(np.bincount(pos, minlength=nnz), out=ip[1:])
        return cls(n_nodes=n, edge_key=edge_key, canon=canon, indptr=ip, seeds=sd, seed_kp_indptr=seed_kp_indptr,
                   seed_kp_indices=seed_kp_indices)

    def slices(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, count) of the shared-seed slice of each edge u[i]-v[i] (count 0 if not an edge)."""
        lo = np.minimum(u, v).astype(np.int64)
        hi = np.maximum(u, v).astype(np.int64)
        keys = lo * self.n_nodes + hi
        nnz = len(self.edge_key)
        if nnz == 0:
            return np.zeros(len(keys), np.int64), np.zeros(len(keys), np.int64)
        pos = np.searchsorted(self.edge_key, keys)
        pc = np.minimum(pos, nnz - 1)
        ok = (pos < nnz) & (self.edge_key[pc] == keys)
        start = self.indptr[pc]
        count = np.where(ok, self.indptr[pc + 1] - start, 0)
        return start, count

    def slices_at(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, count) of the shared-seed slice of the edges at CSR positions pos (either direction)."""
        c = self.canon[pos]
        start = self.indptr[c]
        return start, self.indptr[c + 1] - start

    def shared(self, u: int, v: int) -> np.ndarray:
        """Seeds containing both u and v."""
        s, c = self.slices(np.array([u]), np.array([v]))
        return self.seeds[s[0] : s[0] + c[0]]


def pick_seeds(
    index: EdgeSeedIndex,
    paths: np.ndarray,
    reached: np.ndarray,
    k: np.ndarray,
    seed_use: np.ndarray,
    scan_cap: int,
    rng: np.random.Generator,
    positions: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeds for each path: (seeds (n, max k) int64 padded with -1, seeds per path). seed_use is a working copy of
    the per-seed use counts and is incremented for every pick (so later picks in the batch see earlier ones).
    positions: the CSR position of each path edge (as `walk_with_positions` gives), which spares a search."""
    n = len(paths)
    kmax = int(k.max()) if n else 0
    out = np.full((n, max(kmax, 1)), -1, dtype=np.int64)
    out_edge = np.full((n, max(kmax, 1)), np.iinfo(np.int64).max, dtype=np.int64)
    got = np.zeros(n, dtype=np.int64)
    n_edges = reached - 1
    ex_start = np.zeros((n, max(int(n_edges.max()) if n else 0, 1)), dtype=np.int64)
    ex_count = np.zeros_like(ex_start)
    ex_key = np.zeros_like(ex_start)  # the edge's canonical CSR position: equal for paths on the same edge
    for e in range(ex_start.shape[1]):
        has = n_edges > e
        if positions is not None:
            pos = positions[has, e]
        else:
            u, v = paths[has, e], paths[has, e + 1]
            lo, hi = np.minimum(u, v), np.maximum(u, v)
            pos = np.minimum(np.searchsorted(index.edge_key, lo * index.n_nodes + hi), len(index.edge_key) - 1)
            pos = np.where(index.edge_key[pos] == lo * index.n_nodes + hi, pos, -1) if len(pos) else pos
        ok = pos >= 0
        s, c = index.slices_at(np.where(ok, pos, 0))
        ex_start[has, e], ex_count[has, e] = s, np.where(ok, c, 0)
        ex_key[has, e] = np.where(ok, index.canon[np.where(ok, pos, 0)], -1)
    # Each edge visit takes one seed; an edge can give at most min(count, kmax) seeds, so 2 * kmax visits per
    # edge bound the rounds.
    # A path stops when it has k seeds or a whole forward-and-back cycle of its edges found nothing new.
    misses = np.zeros(n, dtype=np.int64)
    rounds = 0
    active = np.flatnonzero((got < k) & (n_edges > 0))
    while len(active):
        ne = n_edges[active]
        q = rounds % (2 * ne)
        e = np.where(q < ne, q, 2 * ne - 1 - q)
        start = ex_start[active, e]
        count = ex_count[active, e]
        win = np.minimum(count, scan_cap)
        offs = np.where(count > scan_cap, (rng.random(len(active)) * np.maximum(count, 1)).astype(np.int64), 0)
        seg_off = np.zeros(len(active) + 1, dtype=np.int64)
        np.cumsum(win, out=seg_off[1:])
        tot = int(seg_off[-1])
        seg = np.repeat(np.arange(len(active)), win)
        local = np.arange(tot, dtype=np.int64) - seg_off[seg]
        cand = index.seeds[start[seg] + (offs[seg] + local) % np.maximum(count[seg], 1)].astype(np.int64)
        # Least used first; ties are broken by a pseudo-random fraction per seed that is the same for every path
        # of this round, so paths standing on the same edge rank its seeds alike and the r-th of them takes the
        # r-th least used (a batch spreads over an edge's seeds as sequential picks would). Seeds already on the
        # path are out.
        salt = np.uint64(rng.integers(0, 2**63))
        with np.errstate(over="ignore"):
            mix = cand.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + salt
            mix ^= mix >> np.uint64(29)
            mix *= np.uint64(0xBF58476D1CE4E5B9)
            mix ^= mix >> np.uint64(32)
        # One integer key: segment (22 bits), use count (20 bits, saturating; taken seeds last), tie-break hash
        # (21 bits): a segment's r-th smallest key is its r-th least used seed.
        use = np.minimum(seed_use[cand], _USE_CAP - 1)
        taken = (cand[:, None] == out[active[seg]]).any(axis=1)
        use[taken] = _USE_CAP
        key = (seg.astype(np.int64) << np.int64(41)) | (use << np.int64(21)) | (mix >> np.uint64(43)).astype(np.int64)
        if tot:
            n_ok = np.bincount(seg, weights=~taken, minlength=len(active)).astype(np.int64)
            ekey = ex_key[active, e]
            by_edge = np.argsort(ekey, kind="stable")
            sk = ekey[by_edge]
            grp_start = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
            rank = np.empty(len(active), dtype=np.int64)
            rank[by_edge] = np.arange(len(active)) - np.repeat(grp_start, np.diff(np.r_[grp_start, len(active)]))
            bsel = np.flatnonzero(n_ok > 0)
            r = rank[bsel] % n_ok[bsel]
            best = np.empty(len(bsel), dtype=np.int64)
            # Rank 0 (the usual case): the segment's smallest key, found without sorting.
            nonempty = np.flatnonzero(win > 0)
            seg_min = np.zeros(len(active), dtype=np.int64)
            seg_min[nonempty] = np.minimum.reduceat(key, seg_off[nonempty])
            at_min = np.flatnonzero(key == seg_min[seg])
            first_seg, first_at = np.unique(seg[at_min], return_index=True)
            min_pos = np.full(len(active), -1, dtype=np.int64)
            min_pos[first_seg] = at_min[first_at]
            zero = r == 0
            best[zero] = min_pos[bsel[zero]]
            # Rank r > 0 (several paths on one edge this round): sort only those segments' candidates.
            if not zero.all():
                deep = bsel[~zero]
                want = np.zeros(len(active), dtype=bool)
                want[deep] = True
                sub = np.flatnonzero(want[seg])
                order = sub[np.argsort(key[sub])]
                sub_off = np.zeros(len(active) + 1, dtype=np.int64)
                np.cumsum(np.where(want, win, 0), out=sub_off[1:])
                best[~zero] = order[sub_off[deep] + r[~zero]]
            bseg = seg[best]
            rows = active[bseg]
            chosen = cand[best]
            out[rows, got[rows]] = chosen
            out_edge[rows, got[rows]] = e[bseg]
            got[rows] += 1
            np.add.at(seed_use, chosen, 1)
            hit = np.zeros(len(active), dtype=bool)
            hit[bseg] = True
        else:
            hit = np.zeros(len(active), dtype=bool)
        misses[active] = np.where(hit, 0, misses[active] + 1)
        rounds += 1
        active = np.flatnonzero((got < k) & (n_edges > 0) & (misses < 2 * n_edges))
    return _chain(index, paths, out, out_edge, got, seed_use)


def _chain(
    index: EdgeSeedIndex, paths: np.ndarray, seeds: np.ndarray, pick_edge: np.ndarray, got: np.ndarray,
    seed_use: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Order each path's seeds so that consecutive ones share a path KP.

    A seed picked for edge p contains path KPs p and p+1 and maybe a longer contiguous run p..r; seeds are listed
    by (r, p, pick order). That chains them whenever the runs overlap, which the forward-then-back pick order makes
    the rule; a seed that still shares no path KP with the one before it is dropped (and its use count given
    back), so the property holds always."""
    n, K = seeds.shape
    L = paths.shape[1]
    has = seeds >= 0
    sd = np.where(has, seeds, 0)
    lo = index.seed_kp_indptr[sd]
    cnt = np.where(has, index.seed_kp_indptr[sd + 1] - lo, 0)
    # contains[i, s, j]: seed s of path i contains path KP j. One row per (path, seed, KP of the seed), compared
    # with the path's KPs (padding is -1, never a KP id).
    contains = np.zeros((n, K, L), dtype=bool)
    owner = np.flatnonzero(cnt.ravel())  # (path, seed slot) flat index
    c = cnt.ravel()[owner]
    if len(owner):
        first = np.cumsum(c) - c
        elem = np.repeat(lo.ravel()[owner] - first, c) + np.arange(int(c.sum()))
        kp = index.seed_kp_indices[elem].astype(np.int64)
        who = np.repeat(owner, c)
        hit, j = np.nonzero(kp[:, None] == paths[who // K])
        contains.reshape(n * K, L)[who[hit], j] = True
    run = np.zeros((n, K, L + 1), dtype=np.int64)
    for j in range(L - 1, -1, -1):
        run[:, :, j] = np.where(contains[:, :, j], run[:, :, j + 1] + 1, 0)
    p = np.where(has, pick_edge, 0)
    run_end = np.where(has, p + np.take_along_axis(run, p[:, :, None], axis=2)[:, :, 0] - 1, np.iinfo(np.int64).max)
    order = np.lexsort((np.broadcast_to(np.arange(K), (n, K)), np.where(has, p, L), run_end), axis=1)
    seeds = np.take_along_axis(seeds, order, axis=1)
    contains = np.take_along_axis(contains, order[:, :, None], axis=1)
    keep = seeds >= 0
    last = np.zeros(n, dtype=np.int64)  # position of the last kept seed
    for s in range(1, K):
        prev = contains[np.arange(n), last]
        shares = (prev & contains[:, s]).any(axis=1)
        drop = keep[:, s] & ~shares
        if drop.any():
            np.subtract.at(seed_use, seeds[drop, s], 1)
            keep[drop, s] = False
        last = np.where(keep[:, s], s, last)
    # Compact the kept seeds to the left.
    pos = np.argsort(~keep, axis=1, kind="stable")
    seeds = np.where(np.take_along_axis(keep, pos, axis=1), np.take_along_axis(seeds, pos, axis=1), -1)
    return seeds, keep.sum(axis=1).astype(np.int64)
