"""The knowledge-point graph, built incrementally from batches of annotated seeds (domain code: no I/O).

Nodes are KPs (dense ids in order of first appearance), an undirected edge joins two KPs that occur in the same seed,
weighted by the number of such seeds, and every KP keeps its seeds (the KP-seed bipartite index).

How it stays fast at millions of seeds:
- seed ids, KP texts and discipline names become dense ids through `StringIndex` (linksyn.graph.interning): a large
  batch is hashed and looked up in numpy with every match checked bytewise, not string by string in a dict; the
  texts live in the snapshot's blob + offsets form, so snapshots write and restore them without a per-string pass;
- the state is flat numpy arrays: (seed row, KP id) pairs in seed order, and the edges as one sorted int64 key array
  (u << 32 | v, u < v) with an int64 weight array beside it;
- a batch turns into all its within-seed KP pairs with repeat/arange arithmetic over the per-seed CSR, whose keys
  land in a pending buffer; once the buffer is a sizeable fraction of the edge table it is counted with one sort and
  merged into the table in one pass (amortised, LSM-style), never edge by edge;
- KP attributes (popularity, difficulty histogram, majority discipline) are derived from the pairs on demand and
  cached until the next ingest, so ingest only appends.

Everything except KP and seed id numbering is independent of the order seeds arrive in (ties in the majority
discipline go to the alphabetically first name), so two graphs fed the same seeds in different interleavings are
equal up to relabelling (`canonical_form` in linksyn.graph.analysis compares them that way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from linksyn.graph.interning import StringIndex, pack_strings
from linksyn.graph.snapshot import GraphSnapshot, StringTable

if TYPE_CHECKING:
    from linksyn.v1.records_pb2 import AnnotatedSeed

N_GRADES = 5
"""Difficulty grades 1..5; 0 means unknown."""
_SHIFT = np.int64(32)
_LOW = np.int64((1 << 32) - 1)
_MAX_ID = (1 << 31) - 1  # ids are stored as int32 in snapshots
BUILDER_VERSION = "kpgraph-1"


@dataclass(frozen=True)
class SeedBatch:
    """Annotated seeds in columnar form: seed i has KPs kps[kp_indptr[i]:kp_indptr[i+1]]."""

    seed_ids: list[str]
    kp_indptr: np.ndarray  # int64 (n+1,)
    kps: list[str]
    discipline: list[str]
    """Discipline name per seed, "" if unknown."""
    difficulty: np.ndarray  # int8 (n,), 1..5, 0 unknown
    question: list[str]
    answer: list[str]

    def __post_init__(self) -> None:
        n = len(self.seed_ids)
        if len(self.kp_indptr) != n + 1 or (n + 1 and self.kp_indptr[-1] != len(self.kps)) or self.kp_indptr[0] != 0:
            raise ValueError(
                f"kp_indptr must have {n + 1} entries from 0 to {len(self.kps)} (len(kps)), "
                f"got {len(self.kp_indptr)} entries ending at {self.kp_indptr[-1] if len(self.kp_indptr) else None}"
            )
        if np.any(np.diff(self.kp_indptr) < 0):
            raise ValueError("kp_indptr must be non-decreasing")
        for name in ("discipline", "difficulty", "question", "answer"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, expected {n} (one per seed)")
        d = np.asarray(self.difficulty)
        bad = np.flatnonzero((d < 0) | (d > N_GRADES))
        if len(bad):
            raise ValueError(f"difficulty must be 0 (unknown) or 1..5, seed {self.seed_ids[bad[0]]!r} has {d[bad[0]]}")

    def __len__(self) -> int:
        return len(self.seed_ids)

    @classmethod
    def from_lists(
        cls,
        seed_ids: Sequence[str],
        kps: Sequence[Sequence[str]],
        discipline: Sequence[str] | None = None,
        difficulty: Sequence[int] | None = None,
        question: Sequence[str] | None = None,
        answer: Sequence[str] | None = None,
    ) -> "SeedBatch":
        """Convenience constructor from one KP list per seed (tests, benches, small inputs)."""
        n = len(seed_ids)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(k) for k in kps], out=indptr[1:])
        return cls(
            seed_ids=list(seed_ids),
            kp_indptr=indptr,
            kps=[t for ks in kps for t in ks],
            discipline=list(discipline) if discipline is not None else [""] * n,
            difficulty=np.asarray(difficulty if difficulty is not None else np.zeros(n), dtype=np.int8),
            question=list(question) if question is not None else [""] * n,
            answer=list(answer) if answer is not None else [""] * n,
        )

    @classmethod
    def from_annotated(cls, seeds: Sequence["AnnotatedSeed"]) -> "SeedBatch":
        """Columns of decoded AnnotatedSeed records (validate them first: linksyn.graph.stage does)."""
        return cls.from_lists(
            [s.seed.id for s in seeds],
            [s.kps for s in seeds],
            [s.discipline for s in seeds],
            [s.difficulty for s in seeds],
            [s.seed.question for s in seeds],
            [s.seed.answer for s in seeds],
        )


class _Chunks:
    """An append-only array kept as a list of chunks, concatenated (and cached as one chunk) when read."""

    def __init__(self, dtype: np.dtype | type) -> None:
        self.dtype = np.dtype(dtype)
        self._parts: list[np.ndarray] = []

    def append(self, a: np.ndarray) -> None:
        if len(a):
            self._parts.append(np.asarray(a, dtype=self.dtype))

    def array(self) -> np.ndarray:
        if not self._parts:
            return np.zeros(0, dtype=self.dtype)
        if len(self._parts) > 1:
            self._parts = [np.concatenate(self._parts)]
        return self._parts[0]


class _StringChunks:
    """An append-only StringTable kept as chunks (blobs + offsets), joined when read."""

    def __init__(self) -> None:
        self._blobs: list[np.ndarray] = []
        self._lengths = _Chunks(np.int64)

    def extend(self, items: Sequence[str]) -> None:
        blob, lengths = pack_strings(items)
        self._blobs.append(blob)
        self._lengths.append(lengths)

    def extend_table(self, t: StringTable) -> None:
        self._blobs.append(np.asarray(t.blob, dtype=np.uint8))
        self._lengths.append(np.diff(t.offsets))

    def table(self) -> StringTable:
        lengths = self._lengths.array()
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if len(self._blobs) > 1:
            self._blobs = [np.concatenate(self._blobs)]
        blob = self._blobs[0].copy() if self._blobs else np.zeros(0, dtype=np.uint8)
        return StringTable(blob, offsets)


def within_seed_pairs(seed_local: np.ndarray, kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All unordered KP pairs inside each seed, vectorised.

    `seed_local`/`kp` are (seed, KP) pairs sorted by seed, then KP, without duplicates. Returns (u, v) with u < v:
    for the element at position p of a seed with c KPs, its partners are positions p+1..c-1 of the same seed.
    """
    m = len(kp)
    if m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    head = np.empty(m, dtype=bool)
    head[0] = True
    np.not_equal(seed_local[1:], seed_local[:-1], out=head[1:])
    starts = np.flatnonzero(head)
    ends = np.empty(len(starts), dtype=np.int64)
    ends[:-1] = starts[1:]
    ends[-1] = m
    counts = ends - starts
    # partners of element p: the elements after it in its seed (its seed's end - p - 1)
    partners = np.repeat(ends, counts) - np.arange(1, m + 1)
    total = int(partners.sum())
    left = np.repeat(np.arange(m), partners)
    first = np.cumsum(partners) - partners  # where each element's run of partners begins
    right = left + 1 + (np.arange(total) - np.repeat(first, partners))
    return kp[left].astype(np.int64), kp[right].astype(np.int64)


def merge_weighted_keys(
    keys: np.ndarray, weights: np.ndarray, new_keys: np.ndarray, new_weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Add (new_keys, new_weights) (sorted, unique) into the sorted unique table (keys, weights); new arrays out."""
    if len(keys) == 0:
        return new_keys.copy(), new_weights.copy()
    pos = np.searchsorted(keys, new_keys)
    hit = pos < len(keys)
    hit[hit] = keys[pos[hit]] == new_keys[hit]
    weights = weights.copy()
    weights[pos[hit]] += new_weights[hit]
    miss = np.flatnonzero(~hit)
    if not len(miss):
        return keys.copy(), weights
    # One pass merge: a missing key goes where searchsorted put it, shifted by the missing keys before it.
    at = pos[miss] + np.arange(len(miss))
    old = np.ones(len(keys) + len(miss), dtype=bool)
    old[at] = False
    out_k = np.empty(len(old), dtype=keys.dtype)
    out_w = np.empty(len(old), dtype=weights.dtype)
    out_k[at], out_w[at] = new_keys[miss], new_weights[miss]
    out_k[old], out_w[old] = keys, weights
    return out_k, out_w


def stable_order(k: np.ndarray) -> np.ndarray:
    """np.argsort(k, kind="stable") for 0 <= k < 2**31, by one plain sort of (k << 32 | index) keys, which numpy
    does much faster than a stable argsort."""
    if len(k) >= 1 << 32:
        return np.argsort(k, kind="stable")
    key = np.sort((k.astype(np.int64) << _SHIFT) | np.arange(len(k), dtype=np.int64))
    return key & _LOW


def unique_sorted(k: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array."""
    if len(k) == 0:
        return k
    keep = np.empty(len(k), dtype=bool)
    keep[0] = True
    np.not_equal(k[1:], k[:-1], out=keep[1:])
    return k[keep]


def aggregate_keys(keys: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sort keys, sum the weights of equal keys (weights None: 1 each): (unique sorted keys, summed weights)."""
    if len(keys) == 0:
        return keys.astype(np.int64), np.zeros(0, np.int64)
    if weights is None or np.all(weights == 1):  # counting is all there is, and a plain sort beats an argsort
        k = np.sort(keys)
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        return k[starts], np.diff(np.r_[starts, len(k)]).astype(np.int64)
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    return k[starts], np.add.reduceat(weights[order], starts)


@dataclass
class _Derived:
    """KP attributes derived from the pairs; recomputed lazily after an ingest."""

    popularity: np.ndarray
    difficulty_hist: np.ndarray
    discipline: np.ndarray
    kp_seed_indptr: np.ndarray
    kp_seed_indices: np.ndarray


@dataclass
class IngestReport:
    """What one `ingest` call did."""

    seeds_added: int = 0
    seeds_skipped: int = 0
    """Seeds already in the graph (or repeated within the batch): replays change nothing."""
    kps_added: int = 0
    pairs_added: int = 0


@dataclass(repr=False, eq=False)
class KPGraph:
    """The growing KP graph. Not thread-safe: one writer; readers take a snapshot."""

    compact_min: int = 1 << 22
    """Pending co-occurrences (one int64 key each, 8 bytes) kept before they are counted and merged into the
    sorted edge table (also merged when reading)."""
    _kps: StringIndex = field(default_factory=StringIndex)
    """KP text -> KP id."""
    _discs: StringIndex = field(default_factory=StringIndex)
    """Discipline name -> discipline id."""
    _seeds: StringIndex = field(default_factory=StringIndex)
    """Seed id -> seed row."""
    _pair_seed: _Chunks = field(default_factory=lambda: _Chunks(np.int32))
    _pair_kp: _Chunks = field(default_factory=lambda: _Chunks(np.int32))
    _seed_nkp: _Chunks = field(default_factory=lambda: _Chunks(np.int64))
    _seed_disc: _Chunks = field(default_factory=lambda: _Chunks(np.int32))
    _seed_diff: _Chunks = field(default_factory=lambda: _Chunks(np.int8))
    _question: _StringChunks = field(default_factory=_StringChunks)
    _answer: _StringChunks = field(default_factory=_StringChunks)
    _edge_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _edge_w: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _pending: list[np.ndarray] = field(default_factory=list)
    """Edge keys of co-occurrences not yet counted into the edge table, one per seed sharing the pair."""
    _pending_n: int = 0
    _derived: _Derived | None = None

    def __repr__(self) -> str:
        return f"KPGraph(kps={self.n_kps}, seeds={self.n_seeds}, edges={self.n_edges})"

    # ---- sizes and lookups -------------------------------------------------------------------------------------

    @property
    def n_kps(self) -> int:
        return len(self._kps)

    @property
    def n_seeds(self) -> int:
        return len(self._seeds)

    @property
    def n_edges(self) -> int:
        return len(self.edges()[0])

    @property
    def disciplines(self) -> list[str]:
        return self._discs.to_list()

    def kp_id(self, text: str) -> int | None:
        return self._kps.get(text)

    def kp_texts(self) -> list[str]:
        return self._kps.to_list()

    def seed_ids(self) -> list[str]:
        return self._seeds.to_list()

    def has_seed(self, seed_id: str) -> bool:
        return seed_id in self._seeds

    # ---- ingest ------------------------------------------------------------------------------------------------

    def ingest_annotated(self, seeds: Sequence["AnnotatedSeed"]) -> IngestReport:
        return self.ingest(SeedBatch.from_annotated(seeds))

    def ingest(self, batch: SeedBatch) -> IngestReport:
        """Add the batch's seeds that are not in the graph yet (the first occurrence of a repeated id wins)."""
        report = IngestReport()
        n = len(batch)
        if n == 0:
            return report
        # Every string of the batch is looked up first and added only once the batch is known to be good.
        seeds = self._seeds.find(batch.seed_ids)
        kept = seeds.new  # first occurrences of ids new to the graph, ascending: the seeds this batch adds
        report.seeds_added = len(kept)
        report.seeds_skipped = n - len(kept)
        if not len(kept):
            return report
        all_kept = len(kept) == n
        lengths = np.diff(batch.kp_indptr)
        if all_kept:
            kps = self._kps.find(batch.kps)
        else:
            keep = np.zeros(n, dtype=bool)
            keep[kept] = True
            kps = self._kps.find(batch.kps, np.flatnonzero(np.repeat(keep, lengths)))
            lengths = lengths[kept]
        if len(kps.empty):
            seed = kept[np.searchsorted(np.cumsum(lengths), kps.empty[0], side="right")]
            raise ValueError(f"seed {batch.seed_ids[seed]!r} has an empty KP text; nothing of this batch was ingested")
        if self.n_kps + kps.n_new - 1 > _MAX_ID:
            raise OverflowError(f"{self.n_kps + kps.n_new} KPs exceed the int32 id space of snapshots")
        named = np.fromiter(map(len, batch.discipline), dtype=np.int64, count=n)[kept] > 0  # "": unknown
        named = kept[named]
        discs = self._discs.find(batch.discipline, named)

        # Validated: from here on the batch is applied in full. Seed rows are numbered in order of arrival;
        # new KP texts (and disciplines) get the next ids in order of first appearance.
        base = self.n_seeds
        self._seeds.add(seeds)
        self._kps.add(kps)
        self._discs.add(discs)
        report.kps_added = kps.n_new
        self._derived = None
        kp = kps.ids
        local = np.repeat(np.arange(len(kept), dtype=np.int64), lengths)

        # Dedup KPs repeated within a seed and sort each seed's KPs: one sort over (seed, KP) keys. The keys are
        # already ordered by seed, so a stable (run-adaptive) sort is cheaper than np.unique's hashing.
        pk = unique_sorted(np.sort((local << _SHIFT) | kp, kind="stable"))
        local, kp = pk >> _SHIFT, pk & _LOW
        self._pair_seed.append(local + base)
        self._pair_kp.append(kp)
        self._seed_nkp.append(np.bincount(local, minlength=len(kept)))
        report.pairs_added = len(kp)

        code = np.full(n, -1, dtype=np.int32)
        code[named] = discs.ids
        self._seed_disc.append(code[kept])
        self._seed_diff.append(np.asarray(batch.difficulty, dtype=np.int8)[kept])
        self._question.extend(batch.question if all_kept else [batch.question[i] for i in kept.tolist()])
        self._answer.extend(batch.answer if all_kept else [batch.answer[i] for i in kept.tolist()])

        u, v = within_seed_pairs(local, kp)
        if len(u):
            # Counted in bulk when merged: one large sort costs less than many small ones plus a weighted merge.
            self._pending.append((u << _SHIFT) | v)
            self._pending_n += len(u)
            if self._pending_n >= max(self.compact_min, len(self._edge_keys) // 2):
                self._compact()
        return report

    def _compact(self) -> None:
        if not self._pending:
            return
        keys, w = aggregate_keys(self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending))
        self._edge_keys, self._edge_w = merge_weighted_keys(self._edge_keys, self._edge_w, keys, w)
        self._pending = []
        self._pending_n = 0

    # ---- reading -----------------------------------------------------------------------------------------------

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u, v, weight) of every edge, u < v, sorted by (u, v); weight = seeds sharing both KPs."""
        self._compact()
        return self._edge_keys >> _SHIFT, self._edge_keys & _LOW, self._edge_w

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(seed row, KP id) pairs, sorted by seed row then KP id."""
        return self._pair_seed.array(), self._pair_kp.array()

    def _attrs(self) -> _Derived:
        if self._derived is not None:
            return self._derived
        n = self.n_kps
        ps, pk = self.pairs()
        pk64 = pk.astype(np.int64)
        popularity = np.bincount(pk64, minlength=n).astype(np.int64)
        diff = self._seed_diff.array().astype(np.int64)
        hist = np.bincount(pk64 * (N_GRADES + 1) + diff[ps], minlength=n * (N_GRADES + 1))
        hist = hist.reshape(n, N_GRADES + 1)[:, 1:].astype(np.int64)
        # Majority discipline; ties go to the alphabetically first name so the result ignores arrival order.
        names = self.disciplines
        nd = max(1, len(names))
        rank = np.empty(len(names), dtype=np.int64)
        rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
        sdisc = self._seed_disc.array().astype(np.int64)[ps]
        known = sdisc >= 0
        keys, counts = np.unique(pk64[known] * nd + sdisc[known], return_counts=True)
        kp_of, d_of = keys // nd, keys % nd
        score = counts * nd + (nd - 1 - rank[d_of]) if len(keys) else counts
        order = np.lexsort((score, kp_of))
        last = np.flatnonzero(np.r_[kp_of[order][1:] != kp_of[order][:-1], True]) if len(order) else order
        discipline = np.full(n, -1, dtype=np.int32)
        discipline[kp_of[order][last]] = d_of[order][last]
        # KP -> seed rows: pairs are in seed order, so ordering by (KP, pair index) keeps each row's seeds ascending.
        order = stable_order(pk)
        kp_seed_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(popularity, out=kp_seed_indptr[1:])
        self._derived = _Derived(popularity, hist, discipline, kp_seed_indptr, ps[order].astype(np.int32))
        return self._derived

    def kp_popularity(self) -> np.ndarray:
        return self._attrs().popularity

    def kp_difficulty_hist(self) -> np.ndarray:
        return self._attrs().difficulty_hist

    def kp_discipline(self) -> np.ndarray:
        return self._attrs().discipline

    def seeds_of_kp(self, kp: int) -> np.ndarray:
        a = self._attrs()
        return a.kp_seed_indices[a.kp_seed_indptr[kp] : a.kp_seed_indptr[kp + 1]]

    def kps_of_seed(self, row: int) -> np.ndarray:
        indptr = self._seed_indptr()
        return self._pair_kp.array()[indptr[row] : indptr[row + 1]]

    def _seed_indptr(self) -> np.ndarray:
        indptr = np.zeros(self.n_seeds + 1, dtype=np.int64)
        np.cumsum(self._seed_nkp.array(), out=indptr[1:])
        return indptr

    # ---- snapshots ---------------------------------------------------------------------------------------------

    def to_snapshot(
        self, version: int, offsets: Mapping[str, Mapping[int, int]] | None = None, meta: Mapping[str, str] | None = None
    ) -> GraphSnapshot:
        """An immutable copy of the graph as CSR arrays (symmetric adjacency, rows sorted)."""
        n = self.n_kps
        u, v, w = self.edges()
        # Row r holds its edges (x, r) first (columns x < r, ascending x) and then its edges (r, y) (columns y > r,
        # ascending y), so each row comes out sorted. Edges are sorted by (u, v): the second kind is in order
        # already, the first needs the edges ordered by (v, u), which is v then edge index.
        m = len(u)
        lo_cnt, up_cnt = np.bincount(v, minlength=n), np.bincount(u, minlength=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lo_cnt + up_cnt, out=indptr[1:])
        cols = np.empty(2 * m, dtype=np.int32)
        wts = np.empty(2 * m, dtype=np.float32)
        rank = np.arange(m, dtype=np.int64)
        up_first = np.cumsum(up_cnt) - up_cnt  # first edge of each row among edges sorted by u
        at = indptr[u] + lo_cnt[u] + rank - up_first[u]
        cols[at], wts[at] = v, w
        by_v = stable_order(v)
        vv = v[by_v]
        lo_first = np.cumsum(lo_cnt) - lo_cnt
        at = indptr[vv] + rank - lo_first[vv]
        cols[at], wts[at] = u[by_v], w[by_v]
        a = self._attrs()
        _, pk = self.pairs()
        return GraphSnapshot(
            version=version,
            offsets={t: dict(p) for t, p in (offsets or {}).items()},
            disciplines=self.disciplines,
            kp_text=self._kps.table(),
            kp_discipline=a.discipline.copy(),
            kp_difficulty_hist=a.difficulty_hist.copy(),
            kp_popularity=a.popularity.copy(),
            indptr=indptr,
            indices=cols,
            weights=wts,
            kp_seed_indptr=a.kp_seed_indptr.copy(),
            kp_seed_indices=a.kp_seed_indices.copy(),
            seed_ids=self._seeds.table(),
            seed_kp_indptr=self._seed_indptr(),
            seed_kp_indices=pk.astype(np.int32, copy=True),
            seed_discipline=self._seed_disc.array().copy(),
            seed_difficulty=self._seed_diff.array().copy(),
            seed_question=self._question.table(),
            seed_answer=self._answer.table(),
            meta={"builder": BUILDER_VERSION, **dict(meta or {})},
        )

    @classmethod
    def from_snapshot(cls, snap: GraphSnapshot) -> "KPGraph":
        """The graph a snapshot was taken of; ingesting further seeds continues exactly where it stopped."""
        g = cls()
        for what, name, table in (("KP texts", "_kps", snap.kp_text), ("seed ids", "_seeds", snap.seed_ids),
                                  ("disciplines", "_discs", StringTable.from_list(snap.disciplines))):
            try:
                setattr(g, name, StringIndex.from_table(table))
            except ValueError as e:
                raise ValueError(f"snapshot v{snap.version} has repeated {what}: {e}") from None
        nkp = np.diff(snap.seed_kp_indptr)
        g._pair_seed.append(np.repeat(np.arange(snap.n_seeds, dtype=np.int32), nkp))
        g._pair_kp.append(snap.seed_kp_indices)
        g._seed_nkp.append(nkp)
        g._seed_disc.append(snap.seed_discipline)
        g._seed_diff.append(snap.seed_difficulty)
        g._question.extend_table(snap.seed_question)
        g._answer.extend_table(snap.seed_answer)
        rows = np.repeat(np.arange(snap.n_kps, dtype=np.int64), np.diff(snap.indptr))
        cols = snap.indices.astype(np.int64)
        upper = rows < cols
        # CSR rows ascending with sorted columns: the upper triangle is already in key order.
        g._edge_keys = (rows[upper] << _SHIFT) | cols[upper]
        g._edge_w = np.rint(snap.weights[upper]).astype(np.int64)
        return g
