"""The knowledge-point graph, built incrementally from batches of annotated seeds (domain code: no I/O).

Nodes are KPs (dense ids in order of first appearance), an undirected edge joins two KPs that occur in the same seed,
weighted by the number of such seeds, and every KP keeps its seeds (the KP-seed bipartite index).

How it stays fast at millions of seeds (the hot loops are numba kernels, compiled once and cached on disk; `warm_up`
compiles or loads them before the first batch):
- seed ids, KP texts and discipline names become dense ids through `StringIndex` (linksyn.graph.interning): a batch
  is joined into one buffer and looked up by one kernel (hash, batch-local fold of repeats, open-addressing probe,
  bytewise check of every match), not string by string in a dict; the texts live in the snapshot's blob + offsets
  form, so snapshots write and restore them without a per-string pass;
- the state is flat numpy arrays: (seed row, KP id) pairs in seed order, kept as per-batch chunks, and the edges as
  one sorted int64 key array (u << 32 | v, u < v) with an int64 weight array beside it;
- one kernel (linksyn.graph.edges.seed_pairs) sorts and dedups each seed's KPs and writes the keys of their pairs to
  a pending buffer; once that is a sizeable fraction of the edge table, the keys are radix-sorted, counted, and
  merged into the table in place from its end (amortised, LSM-style), never edge by edge;
- KP attributes (popularity, difficulty histogram, majority discipline) are derived from the pairs on demand and
  cached until the next ingest, so ingest only appends.

Everything except KP and seed id numbering is independent of the order seeds arrive in (ties in the majority
discipline go to the alphabetically first name), so two graphs fed the same seeds in different interleavings are
equal up to relabelling (`canonical_form` in linksyn.graph.analysis compares them that way).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
from linksyn.common.grades import GRADES, MAX_GRADE
from linksyn.common.snapshots.graph import GraphSnapshot, StringTable
from linksyn.graph.edges import count_into, seed_pairs, sort_keys
from linksyn.graph.interning import StringIndex, pack_strings

if TYPE_CHECKING:
    from linksyn.v1.records_pb2 import AnnotatedSeed

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
        bad = np.flatnonzero((d < 0) | (d > MAX_GRADE))
        if len(bad):
            raise ValueError(f"difficulty must be 0 (unknown) or a grade {GRADES}, seed {self.seed_ids[bad[0]]!r} has {d[bad[0]]}")

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
    """An append-only array kept as a list of chunks, concatenated (and cached as one chunk) when read. (Not one
    buffer grown geometrically: measured, its copies and huge-page faults cost more than the chunks.)"""

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


def stable_order(k: np.ndarray) -> np.ndarray:
    """np.argsort(k, kind="stable") for 0 <= k < 2**31, by one plain sort of (k << 32 | index) keys, which numpy
    does much faster than a stable argsort."""
    if len(k) >= 1 << 32:
        return np.argsort(k, kind="stable")
    key = np.sort((k.astype(np.int64) << _SHIFT) | np.arange(len(k), dtype=np.int64))
    return key & _LOW


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
    """Pending co-occurrences (one int64 key each, 8 bytes, and as much again for the sort's second buffer) kept
    before they are counted and merged into the sorted edge table (also merged when reading, and at least once the
    pending keys reach half the edges). Small: the merge is in place and cheap, while larger buffers cost page
    faults (measured at 1M seeds: 1M keys beat 4M)."""
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
    """The edge table, _edge_keys[:_n_edges] (sorted) and _edge_w[:_n_edges]; merged into in place, with room."""
    _edge_w: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    """int32: a weight counts seeds, which are fewer than 2**31 (ingest checks)."""
    _n_edges: int = 0
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """Edge keys of co-occurrences not yet counted into the edge table (one per seed sharing the pair) in
    _pending[:_pending_n]; the buffer is reused after each merge."""
    _pending_n: int = 0
    _sort_scratch: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """The radix sort's second buffer, as long as _pending."""
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
        self._compact()
        return self._n_edges

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
        lengths = np.diff(np.asarray(batch.kp_indptr, dtype=np.int64))
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
        if self.n_seeds + len(kept) - 1 > _MAX_ID:
            raise OverflowError(f"{self.n_seeds + len(kept)} seeds exceed the int32 row space of snapshots")
        discs = self._discs.find(batch.discipline, None if all_kept else kept, skip_empty=True)  # "": unknown

        # Validated: from here on the batch is applied in full. Seed rows are numbered in order of arrival;
        # new KP texts (and disciplines) get the next ids in order of first appearance.
        base = self.n_seeds
        self._seeds.add(seeds)
        self._kps.add(kps)
        self._discs.add(discs)
        report.kps_added = kps.n_new
        self._derived = None

        # Each seed's distinct KPs ascending, and the keys of their pairs into the pending buffer: one kernel.
        m = len(kps.ids)
        pair_seed, pair_kp = np.empty(m, np.int32), np.empty(m, np.int32)
        n_kp = np.empty(len(kept), np.int64)
        self._reserve_pending(int((lengths * (lengths - 1) // 2).sum()))
        n_pairs, self._pending_n = seed_pairs(kps.ids, lengths, base, pair_seed, pair_kp, n_kp, self._pending,
                                              self._pending_n)
        self._pair_seed.append(pair_seed[:n_pairs])
        self._pair_kp.append(pair_kp[:n_pairs])
        self._seed_nkp.append(n_kp)
        report.pairs_added = n_pairs

        self._seed_disc.append(discs.ids)
        self._seed_diff.append(np.asarray(batch.difficulty, dtype=np.int8)[kept])
        self._question.extend(batch.question if all_kept else [batch.question[i] for i in kept.tolist()])
        self._answer.extend(batch.answer if all_kept else [batch.answer[i] for i in kept.tolist()])
        # Counted in bulk when merged: one large sort costs less than many small ones plus a weighted merge.
        if self._pending_n >= max(self.compact_min, self._n_edges // 2):
            self._compact()
        return report

    def _reserve_pending(self, more: int) -> None:
        need = self._pending_n + more
        if len(self._pending) < need:
            # Room up to the merge threshold at once: np.empty only reserves address space, pages are taken as
            # keys arrive, so a small graph pays nothing for it and a large one copies nothing while it fills.
            grown = np.empty(max(need, 2 * len(self._pending), self.compact_min + more), np.int64)
            grown[: self._pending_n] = self._pending[: self._pending_n]
            self._pending = grown
            self._sort_scratch = np.empty(len(grown), np.int64)  # kept: a new one each merge costs page faults

    def _compact(self) -> None:
        if not self._pending_n:
            return
        keys = self._pending[: self._pending_n]
        sort_keys(keys, self._sort_scratch)
        self._edge_keys, self._edge_w, self._n_edges = count_into(self._edge_keys, self._edge_w, self._n_edges, keys,
                                                                  self._sort_scratch)
        self._pending_n = 0

    # ---- reading -----------------------------------------------------------------------------------------------

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u, v, weight) of every edge, u < v, sorted by (u, v); weight = seeds sharing both KPs."""
        self._compact()
        keys = self._edge_keys[: self._n_edges]
        # a copy (astype), since merges write in place
        return keys >> _SHIFT, keys & _LOW, self._edge_w[: self._n_edges].astype(np.int64)

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
        hist = np.bincount(pk64 * (MAX_GRADE + 1) + diff[ps], minlength=n * (MAX_GRADE + 1))
        hist = hist.reshape(n, MAX_GRADE + 1)[:, 1:].astype(np.int64)
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
        g._edge_w = np.rint(snap.weights[upper]).astype(np.int32)
        g._n_edges = len(g._edge_keys)
        return g


def _small_pages() -> None:
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # a numpy without the switch: nothing to turn off
        return
    _set_madvise_hugepage(False)


def warm_up() -> float:
    """Prepare this process for ingest, once, before the first batch; returns the seconds it took.

    - numpy's transparent huge pages off (`NUMPY_MADVISE_HUGEPAGE=0`, process-wide): the graph keeps spare room in
      its buffers (the edge table's, the pending keys'), and a huge page is zeroed in full at its first touch,
      used or not. Measured on 1M seeds (bench/graph.py): ingest 1.17 -> 1.01 s CPU, system time 0.31 -> 0.13 s.
    - every kernel an ingest runs compiled (or loaded from numba's disk cache), by ingesting a few hundred seeds
      into a throwaway graph, so the first real batch does not pay for it."""
    t = time.perf_counter()
    _small_pages()
    n = 600  # more texts than a new index's table holds, so it grows too
    g = KPGraph()
    g.ingest(SeedBatch.from_lists([f"warm-up {i}" for i in range(n)], [[f"kp {i}", f"kp {i + 1}"] for i in range(n)],
                                  ["x"] * n))
    # a replayed seed (a lookup of a subset), a non-ASCII text (encoded per string), a KP repeated in a seed
    g.ingest(SeedBatch.from_lists(["warm-up 0", "warm-up \u00e9"], [["kp 1"], ["kp 1", "kp 2", "kp 1"]]))
    g._compact()  # the merge of the pending pairs
    return time.perf_counter() - t
