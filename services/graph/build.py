"""The knowledge-point graph, built incrementally from batches of annotated seeds (domain code: no I/O).

Nodes are KPs (dense ids in order of first appearance), an undirected edge joins two KPs that occur in the same seed,
weighted by the number of such seeds, and every KP keeps its seeds (the KP-seed bipartite index).

How it stays fast at millions of seeds:
- the state is flat numpy arrays: (seed row, KP id) pairs in seed order, and the edges as one sorted int64 key array
  (u << 32 | v, u < v) with an int64 weight array beside it;
- a batch turns into all its within-seed KP pairs with repeat/arange arithmetic over the per-seed CSR, is aggregated
  with np.unique, and lands in a pending buffer; pending runs are merged into the sorted edge table with
  searchsorted/insert once they are a sizeable fraction of it (amortised, LSM-style), never edge by edge;
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


def encode_strings(items: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """(UTF-8 blob, byte length of each item). Pure-ASCII input (the common case) avoids a per-item encode."""
    blob = "".join(items).encode("utf-8")
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    if len(blob) != lengths.sum():  # not pure ASCII: character counts are not byte counts
        lengths = np.fromiter((len(s.encode("utf-8")) for s in items), dtype=np.int64, count=len(items))
    return blob, lengths


def string_table(items: Sequence[str]) -> StringTable:
    """StringTable.from_list, faster for large lists."""
    blob, lengths = encode_strings(items)
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return StringTable(np.frombuffer(blob, dtype=np.uint8).copy(), offsets)


class _StringChunks:
    """An append-only StringTable kept as chunks (blobs + offsets), joined when read."""

    def __init__(self) -> None:
        self._blobs: list[np.ndarray] = []
        self._lengths = _Chunks(np.int64)

    def extend(self, items: Sequence[str]) -> None:
        blob, lengths = encode_strings(items)
        self._blobs.append(np.frombuffer(blob, dtype=np.uint8))
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
    starts = np.flatnonzero(np.r_[True, seed_local[1:] != seed_local[:-1]])
    counts = np.diff(np.r_[starts, m])
    pos = np.arange(m) - np.repeat(starts, counts)
    partners = np.repeat(counts, counts) - 1 - pos
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
    miss = ~hit
    return np.insert(keys, pos[miss], new_keys[miss]), np.insert(weights, pos[miss], new_weights[miss])


def unique_sorted(k: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array."""
    if len(k) == 0:
        return k
    keep = np.empty(len(k), dtype=bool)
    keep[0] = True
    np.not_equal(k[1:], k[:-1], out=keep[1:])
    return k[keep]


def aggregate_keys(keys: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort keys, sum the weights of equal keys: (unique sorted keys, summed weights)."""
    if len(keys) == 0:
        return keys.astype(np.int64), weights.astype(np.int64)
    if np.all(weights == 1):  # fresh pairs: counting is all there is, and a plain sort beats an argsort
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

    compact_min: int = 1 << 20
    """Pending edge keys kept before merging into the sorted table (also merged when reading)."""
    _kp_id: dict[str, int] = field(default_factory=dict)
    _disc_id: dict[str, int] = field(default_factory=dict)
    _seed_row: dict[str, int] = field(default_factory=dict)
    _pair_seed: _Chunks = field(default_factory=lambda: _Chunks(np.int32))
    _pair_kp: _Chunks = field(default_factory=lambda: _Chunks(np.int32))
    _seed_nkp: _Chunks = field(default_factory=lambda: _Chunks(np.int64))
    _seed_disc: _Chunks = field(default_factory=lambda: _Chunks(np.int32))
    _seed_diff: _Chunks = field(default_factory=lambda: _Chunks(np.int8))
    _question: _StringChunks = field(default_factory=_StringChunks)
    _answer: _StringChunks = field(default_factory=_StringChunks)
    _edge_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _edge_w: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _pending: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    _pending_n: int = 0
    _derived: _Derived | None = None

    def __repr__(self) -> str:
        return f"KPGraph(kps={self.n_kps}, seeds={self.n_seeds}, edges={self.n_edges})"

    # ---- sizes and lookups -------------------------------------------------------------------------------------

    @property
    def n_kps(self) -> int:
        return len(self._kp_id)

    @property
    def n_seeds(self) -> int:
        return len(self._seed_row)

    @property
    def n_edges(self) -> int:
        return len(self.edges()[0])

    @property
    def disciplines(self) -> list[str]:
        return list(self._disc_id)

    def kp_id(self, text: str) -> int | None:
        return self._kp_id.get(text)

    def kp_texts(self) -> list[str]:
        return list(self._kp_id)

    def seed_ids(self) -> list[str]:
        return list(self._seed_row)

    def has_seed(self, seed_id: str) -> bool:
        return seed_id in self._seed_row

    # ---- ingest ------------------------------------------------------------------------------------------------

    def ingest_annotated(self, seeds: Sequence["AnnotatedSeed"]) -> IngestReport:
        return self.ingest(SeedBatch.from_annotated(seeds))

    def ingest(self, batch: SeedBatch) -> IngestReport:
        """Add the batch's seeds that are not in the graph yet (the first occurrence of a repeated id wins)."""
        report = IngestReport()
        n = len(batch)
        if n == 0:
            return report
        # Seed dedup. Fast path (the usual case: all ids new and distinct) stays in C; otherwise one pass in Python.
        rows = self._seed_row
        new_ids = dict.fromkeys(batch.seed_ids)
        if len(new_ids) == n and rows.keys().isdisjoint(new_ids):
            keep = np.ones(n, dtype=bool)
        else:
            keep = np.zeros(n, dtype=bool)
            new_ids = {}
            for i, sid in enumerate(batch.seed_ids):
                if sid not in rows and sid not in new_ids:
                    new_ids[sid] = None
                    keep[i] = True
        kept = np.flatnonzero(keep)
        all_kept = len(kept) == n
        report.seeds_added = len(kept)
        report.seeds_skipped = n - len(kept)
        if not len(kept):
            return report
        lengths = np.diff(batch.kp_indptr)
        elem_keep = np.repeat(keep, lengths)
        texts = batch.kps if elem_keep.all() else [t for t, k in zip(batch.kps, elem_keep) if k]
        if "" in texts:
            bad = next(batch.seed_ids[i] for i in kept if "" in batch.kps[batch.kp_indptr[i] : batch.kp_indptr[i + 1]])
            raise ValueError(f"seed {bad!r} has an empty KP text; nothing of this batch was ingested")
        kp_dict = self._kp_id
        n_kps_before = len(kp_dict)
        fresh = [t for t in dict.fromkeys(texts) if t not in kp_dict]
        if n_kps_before + len(fresh) - 1 > _MAX_ID:
            raise OverflowError(f"{n_kps_before + len(fresh)} KPs exceed the int32 id space of snapshots")

        # Validated: from here on the batch is applied in full. Seed rows are numbered in order of arrival;
        # new KP texts get the next ids in order of first appearance.
        base = len(rows)
        rows.update(zip(new_ids, range(base, base + len(new_ids))))
        kp_dict.update(zip(fresh, range(n_kps_before, n_kps_before + len(fresh))))
        report.kps_added = len(fresh)
        self._derived = None
        kp = np.fromiter(map(kp_dict.__getitem__, texts), dtype=np.int64, count=len(texts))
        local = np.repeat(np.arange(len(kept), dtype=np.int64), lengths[kept])

        # Dedup KPs repeated within a seed and sort each seed's KPs: one sort over (seed, KP) keys. The keys are
        # already ordered by seed, so a stable (run-adaptive) sort is cheaper than np.unique's hashing.
        pk = unique_sorted(np.sort((local << _SHIFT) | kp, kind="stable"))
        local, kp = pk >> _SHIFT, pk & _LOW
        self._pair_seed.append(local + base)
        self._pair_kp.append(kp)
        self._seed_nkp.append(np.bincount(local, minlength=len(kept)))
        report.pairs_added = len(kp)

        names = batch.discipline if all_kept else [batch.discipline[i] for i in kept.tolist()]
        disc_dict = self._disc_id
        for name in dict.fromkeys(names):
            if name and name not in disc_dict:
                disc_dict[name] = len(disc_dict)
        code = {"": -1, **disc_dict}
        self._seed_disc.append(np.fromiter(map(code.__getitem__, names), dtype=np.int32, count=len(names)))
        self._seed_diff.append(np.asarray(batch.difficulty, dtype=np.int8)[kept])
        self._question.extend(batch.question if all_kept else [batch.question[i] for i in kept])
        self._answer.extend(batch.answer if all_kept else [batch.answer[i] for i in kept])

        u, v = within_seed_pairs(local, kp)
        if len(u):
            keys, counts = aggregate_keys((u << _SHIFT) | v, np.ones(len(u), dtype=np.int64))
            self._pending.append((keys, counts))
            self._pending_n += len(keys)
            if self._pending_n >= max(self.compact_min, len(self._edge_keys) // 4):
                self._compact()
        return report

    def _compact(self) -> None:
        if not self._pending:
            return
        if len(self._pending) == 1:
            keys, w = self._pending[0]
        else:
            keys, w = aggregate_keys(
                np.concatenate([p[0] for p in self._pending]), np.concatenate([p[1] for p in self._pending])
            )
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
        names = list(self._disc_id)
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
        # KP -> seed rows: pairs are in seed order, so a stable sort by KP keeps each row's seeds ascending.
        order = np.argsort(pk, kind="stable")
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
        rows = np.concatenate([u, v])
        cols = np.concatenate([v, u])
        # The first half is already sorted by (u, v); one argsort over row-major keys orders both halves.
        order = np.argsort((rows << _SHIFT) | cols, kind="stable")
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        a = self._attrs()
        _, pk = self.pairs()
        return GraphSnapshot(
            version=version,
            offsets={t: dict(p) for t, p in (offsets or {}).items()},
            disciplines=list(self._disc_id),
            kp_text=string_table(list(self._kp_id)),
            kp_discipline=a.discipline.copy(),
            kp_difficulty_hist=a.difficulty_hist.copy(),
            kp_popularity=a.popularity.copy(),
            indptr=indptr,
            indices=cols[order].astype(np.int32),
            weights=np.concatenate([w, w])[order].astype(np.float32),
            kp_seed_indptr=a.kp_seed_indptr.copy(),
            kp_seed_indices=a.kp_seed_indices.copy(),
            seed_ids=string_table(list(self._seed_row)),
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
        g._kp_id = {t: i for i, t in enumerate(snap.kp_text.to_list())}
        g._disc_id = {d: i for i, d in enumerate(snap.disciplines)}
        g._seed_row = {s: i for i, s in enumerate(snap.seed_ids.to_list())}
        if len(g._kp_id) != snap.n_kps or len(g._seed_row) != snap.n_seeds:
            raise ValueError(
                f"snapshot v{snap.version} has repeated KP texts or seed ids: {snap.n_kps} KPs / {len(g._kp_id)} "
                f"distinct texts, {snap.n_seeds} seeds / {len(g._seed_row)} distinct ids"
            )
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
