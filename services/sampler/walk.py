"""Vectorised random walks over a CSR graph: a batch of walks advances one step at a time, together.

A walker is three weightings: start weight per node, transition weight `edge_weight[pos] * node_weight[nbr]` over
the current node's row (either may be None = 1). Already-visited neighbours are excluded exactly, without touching
anything but the rows of the current nodes:

- the walks' current nodes are deduplicated, and each distinct row is gathered and normalised once per step
  (a hub that 1,000 walks stand on costs one row, not 1,000);
- each walk draws x uniformly over its row's *unvisited* mass and maps it onto the row's prefix sums by skipping
  the (at most max_kps) visited intervals in position order, then one searchsorted over all rows finds the pick.

So a step costs O(sum of degrees of the distinct current nodes + walks * max_kps), never O(edges).

When a batch is large enough that its walks stand on a sizeable part of the graph (hubs of a power-law graph are
visited by every step), the rows are instead normalised once for the whole graph (`row_mass`, O(edges) per batch,
or once for good for a walker whose weights do not change) and each step is O(walks * max_kps * log edges):
the same draws, without gathering any row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class WalkGraph:
    """The CSR arrays a walk needs (a view of GraphSnapshot)."""

    indptr: np.ndarray  # int64 (n+1,)
    indices: np.ndarray  # int32, sorted ascending within a row

    @property
    def n_nodes(self) -> int:
        return len(self.indptr) - 1

    def degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    @cached_property
    def rows(self) -> np.ndarray:
        """Row (source node) of each CSR position, int64 (nnz,)."""
        return np.repeat(np.arange(self.n_nodes, dtype=np.int64), np.diff(self.indptr))

    @cached_property
    def indices_intp(self) -> np.ndarray:
        """indices as intp: np.take with them needs no conversion (and mode='clip' skips the bounds check)."""
        return self.indices.astype(np.intp)

    @cached_property
    def keys(self) -> np.ndarray:
        """row * n + neighbour of each CSR position: sorted, so one searchsorted finds any (u, v)."""
        return self.rows * self.n_nodes + self.indices.astype(np.int64)


@dataclass(frozen=True)
class RowMass:
    """One walker's transition probabilities of every row, laid along the CSR arrays."""

    norm: np.ndarray  # float64 (nnz,): probability of each position within its row (0 for a row without mass)
    cs: np.ndarray  # float64 (nnz,): running sum of norm over all positions (exclusive prefix = cs - norm)
    has_mass: np.ndarray  # bool (n,): the row has a neighbour with positive weight


@dataclass(frozen=True)
class Walker:
    """How a walk picks its start and its next node.

    start: weight per node (a walk starts at v with probability start[v] / sum); nodes without neighbours must
    carry 0. node/edge: transition weight from u to neighbour v at CSR position p is edge[p] * node[v]; None = 1.
    """

    name: str
    start: np.ndarray
    node: np.ndarray | None
    edge: np.ndarray | None


class UnwalkableGraph(ValueError):
    """No walk can start in this snapshot (an empty graph, no KP with a neighbour, or every class targeted at 0)."""


def draw_starts(start: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n nodes drawn with probability start / start.sum(); UnwalkableGraph if every weight is 0."""
    cs = np.cumsum(start, dtype=np.float64)
    total = cs[-1] if len(cs) else 0.0
    if not total > 0:
        raise UnwalkableGraph(
            "no node can start a walk: every start weight is 0 (no KP has a neighbour, or the targets give every "
            "present class a share of 0)"
        )
    picks = np.searchsorted(cs, rng.random(n) * total, side="right")
    picks = np.minimum(picks, len(cs) - 1)
    # A draw that rounds onto a zero-weight node at the end moves back to the last positive one.
    bad = start[picks] <= 0
    if bad.any():
        last = int(np.flatnonzero(start > 0)[-1])
        picks[bad] = last
    return picks.astype(np.int64)


def _row_values(
    g: WalkGraph, walker: Walker, uniq: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gather the distinct current rows: (segment offsets, CSR positions, neighbours, unnormalised weights)."""
    starts = g.indptr[uniq]
    lens = g.indptr[uniq + 1] - starts
    seg_off = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(lens, out=seg_off[1:])
    total = int(seg_off[-1])
    pos = np.arange(total, dtype=np.int64) - np.repeat(seg_off[:-1] - starts, lens)
    nbr = g.indices[pos]
    if walker.edge is not None:
        val = walker.edge[pos].astype(np.float64, copy=True)
        if walker.node is not None:
            val *= walker.node[nbr]
    elif walker.node is not None:
        val = walker.node[nbr].astype(np.float64, copy=True)
    else:
        val = np.ones(total, dtype=np.float64)
    return seg_off, pos, nbr, val


def row_mass(g: WalkGraph, walker: Walker, out: RowMass | None = None) -> RowMass:
    """The walker's transition probabilities over the whole graph (O(edges)). out: a RowMass of this graph whose
    arrays are overwritten (no fresh 8-bytes-per-edge allocations, whose page faults cost as much as the math)."""
    nnz = len(g.indices)
    if out is not None and len(out.norm) == nnz:
        norm, cs, has_mass = out.norm, out.cs, out.has_mass
    else:
        norm, cs, has_mass = np.empty(nnz), np.empty(nnz), np.empty(g.n_nodes, dtype=bool)
    if walker.node is not None:
        np.take(walker.node, g.indices_intp, out=norm, mode="clip")
        if walker.edge is not None:
            np.multiply(norm, walker.edge, out=norm)
    elif walker.edge is not None:
        norm[:] = walker.edge
    else:
        norm.fill(1.0)
    deg = g.degree()
    rowsum = np.zeros(g.n_nodes, dtype=np.float64)
    nonempty = np.flatnonzero(deg > 0)
    if len(nonempty):
        rowsum[nonempty] = np.add.reduceat(norm, g.indptr[nonempty])
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(rowsum > 0, 1.0 / rowsum, 0.0)
    np.take(inv, g.rows, out=cs, mode="clip")  # cs as scratch: each position's 1 / row sum
    np.multiply(norm, cs, out=norm)
    np.cumsum(norm, out=cs)
    np.greater(rowsum, 0, out=has_mass)
    return RowMass(norm, cs, has_mass)


def step(
    g: WalkGraph, walker: Walker, cur: np.ndarray, visited: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One step of every walk: the next node of each (m,) walk standing on cur, or -1 where no unvisited neighbour
    has positive weight. visited: (m, t) node ids already on each walk (-1 = none), cur included."""
    return step_with_positions(g, walker, cur, visited, rng)[0]


def step_with_positions(
    g: WalkGraph, walker: Walker, cur: np.ndarray, visited: np.ndarray, rng: np.random.Generator,
    rows: RowMass | None = None, tries: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """`step`, also returning the CSR position of each edge taken (-1 where the walk is stuck).

    rows: the walker's `row_mass`, if computed. Then each walk first draws from its whole row, with one
    searchsorted over all walks' targets (sorted, so the search sweeps the array once), and keeps the draw if the
    neighbour is unvisited: rejection sampling, exact for the distribution over unvisited neighbours. Walks still
    rejected after `tries` draws (their row's mass is mostly visited) take the exact gathered-row draw below,
    which is also exact for them: a rejection says nothing about where the accepted draw lands."""
    m = len(cur)
    out = np.full(m, -1, dtype=np.int64)
    out_pos = np.full(m, -1, dtype=np.int64)
    if m == 0:
        return out, out_pos
    if rows is None:
        return _step_gathered(g, walker, cur, visited, rng)
    lo, hi = g.indptr[cur], g.indptr[cur + 1]
    todo = np.flatnonzero(rows.has_mass[cur])
    for _ in range(tries):
        if not len(todo):
            break
        a = lo[todo]
        target = rows.cs[a] - rows.norm[a] + rng.random(len(todo))
        order = np.argsort(target)
        pick = np.empty(len(todo), dtype=np.int64)
        pick[order] = np.searchsorted(rows.cs, target[order], side="right")
        pick = np.clip(pick, a, hi[todo] - 1)
        v = g.indices[pick].astype(np.int64)
        ok = (rows.norm[pick] > 0) & ~(v[:, None] == visited[todo]).any(axis=1)
        out[todo[ok]] = v[ok]
        out_pos[todo[ok]] = pick[ok]
        todo = todo[~ok]
    if len(todo):
        out[todo], out_pos[todo] = _step_gathered(g, walker, cur[todo], visited[todo], rng)
    return out, out_pos


def _step_gathered(
    g: WalkGraph, walker: Walker, cur: np.ndarray, visited: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The exact step over the distinct current rows, gathered (see the module docstring)."""
    m = len(cur)
    n = g.n_nodes
    uniq, qrow = np.unique(cur, return_inverse=True)
    seg_off, pos, nbr, val = _row_values(g, walker, uniq)
    nseg = len(uniq)
    seg = np.repeat(np.arange(nseg, dtype=np.int64), np.diff(seg_off))
    rowsum = np.bincount(seg, weights=val, minlength=nseg)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_sum = np.where(rowsum > 0, 1.0 / rowsum, 0.0)
    norm = val * inv_sum[seg]
    cs = np.cumsum(norm)
    key = seg * n + nbr
    lo, hi = seg_off[qrow], seg_off[qrow + 1]
    n_pos = np.bincount(seg, weights=(val > 0), minlength=nseg)[qrow]
    total = len(nbr)

    # Where do the visited nodes sit in the walk's row? Rows are sorted, so (row, neighbour) keys are too.
    q = qrow[:, None].astype(np.int64) * n + np.where(visited >= 0, visited, 0)
    idx = np.searchsorted(key, q)
    idx_c = np.minimum(idx, max(total - 1, 0))
    found = (visited >= 0) & (idx < total) & (key[idx_c] == q) if total else np.zeros_like(visited, dtype=bool)
    mass = np.where(found, norm[idx_c], 0.0) if total else np.zeros(visited.shape)
    left = n_pos - (found & (mass > 0)).sum(axis=1)
    alive = left > 0

    out = np.full(m, -1, dtype=np.int64)
    out_pos = np.full(m, -1, dtype=np.int64)
    if not alive.any():
        return out, out_pos
    w_idx = np.flatnonzero(alive)
    lo_w, hi_w = lo[w_idx], hi[w_idx]
    base = cs[lo_w] - norm[lo_w]  # mass of the position stream strictly before the row
    m_mass = mass[w_idx]
    iw = idx_c[w_idx]
    m_before = np.where(found[w_idx], cs[iw] - norm[iw] - base[:, None], np.inf)
    # Each walk draws x over its row's unvisited mass and skips the visited intervals in position order.
    order = np.argsort(m_before, axis=1, kind="stable")
    b_sorted = np.take_along_axis(m_before, order, axis=1)
    mass_sorted = np.take_along_axis(m_mass, order, axis=1)
    remaining = 1.0 - m_mass.sum(axis=1)
    x = rng.random(len(w_idx)) * remaining
    for t in range(b_sorted.shape[1]):
        x = np.where(x >= b_sorted[:, t], x + mass_sorted[:, t], x)
    pick = np.searchsorted(cs, base + x, side="right")
    pick = np.clip(pick, lo_w, hi_w - 1)
    chosen = nbr[pick].astype(np.int64)

    # Float rounding can land a draw on a zero-weight or visited neighbour (an event of ~1e-12): redo those exactly.
    bad = (norm[pick] <= 0) | (chosen[:, None] == visited[w_idx]).any(axis=1)
    for b in np.flatnonzero(bad):
        a, z = lo_w[b], hi_w[b]
        p = norm[a:z].copy()
        p[np.isin(nbr[a:z], visited[w_idx[b]])] = 0.0
        pick[b] = a + int(rng.choice(z - a, p=p / p.sum()))
        chosen[b] = nbr[pick[b]]
    out[w_idx] = chosen
    out_pos[w_idx] = pos[pick]
    return out, out_pos


def walk(
    g: WalkGraph, walker: Walker, lengths: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """len(lengths) walks, walk i aiming for lengths[i] nodes. Returns (paths (n, max) int64 padded with -1,
    nodes reached per walk). A walk stops early where no unvisited neighbour has positive weight."""
    paths, reached, _ = walk_with_positions(g, walker, lengths, rng)
    return paths, reached


def walk_with_positions(
    g: WalkGraph, walker: Walker, lengths: np.ndarray, rng: np.random.Generator, rows: RowMass | None = None,
    gather_fraction: float = 0.3, rows_buffer: RowMass | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`walk`, also returning the CSR position of each edge taken: (n, max - 1) int64, -1 padded (step t goes
    from paths[:, t] to paths[:, t + 1] through position positions[:, t]).

    rows: the walker's `row_mass` if the caller has it; else it is computed here as soon as the rows the
    remaining steps would gather (the degrees of the distinct current nodes times the steps left) exceed
    gather_fraction of the edges (gathering costs about 3x more per element than row_mass), and rows are gathered
    per step until then. rows_buffer: arrays `row_mass` may overwrite (see there)."""
    nw = len(lengths)
    width = int(lengths.max()) if nw else 1
    paths = np.full((nw, width), -1, dtype=np.int64)
    positions = np.full((nw, max(width - 1, 0)), -1, dtype=np.int64)
    if nw == 0:
        return paths, np.zeros(0, dtype=np.int64), positions
    paths[:, 0] = draw_starts(walker.start, nw, rng)
    deg = g.degree()
    reached = np.ones(nw, dtype=np.int64)
    active = np.flatnonzero(lengths > 1)
    for t in range(1, width):
        if len(active) == 0:
            break
        cur = paths[active, t - 1]
        if rows is None and int(deg[np.unique(cur)].sum()) * (width - t) > gather_fraction * len(g.indices):
            rows = row_mass(g, walker, rows_buffer)
        nxt, pos = step_with_positions(g, walker, cur, paths[active, :t], rng, rows)
        ok = nxt >= 0
        active = active[ok]
        paths[active, t] = nxt[ok]
        positions[active, t - 1] = pos[ok]
        reached[active] += 1
        active = active[lengths[active] > t + 1]
    return paths, reached, positions


def transition_probabilities(
    g: WalkGraph, walker: Walker, u: int, visited: list[int] | np.ndarray = ()
) -> tuple[np.ndarray, np.ndarray]:
    """(neighbours of u, probability of moving to each) with the visited ones excluded: what `step` samples from."""
    lo, hi = int(g.indptr[u]), int(g.indptr[u + 1])
    nbr = g.indices[lo:hi].astype(np.int64)
    val = np.ones(hi - lo, dtype=np.float64)
    if walker.edge is not None:
        val *= walker.edge[lo:hi]
    if walker.node is not None:
        val *= walker.node[nbr]
    val[np.isin(nbr, np.asarray(list(visited), dtype=np.int64))] = 0.0
    s = val.sum()
    return nbr, (val / s if s > 0 else val)


def start_probabilities(walker: Walker) -> np.ndarray:
    """Probability of starting at each node."""
    s = walker.start.astype(np.float64)
    return s / s.sum()
