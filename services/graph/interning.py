"""Exact string -> dense id interning over numpy buffers, for batches of many strings (domain code: no I/O).

Why not a dict: a graph ingest of a million seeds looks up about five million strings (seed ids, KP texts), and a
dict lookup is a Python-level step per string. Here a large batch costs a constant number of numpy calls:
- the batch is joined into one UTF-8 buffer in C ("\\0".join; non-ASCII text or a string holding NUL is encoded
  per string instead);
- every string is hashed to 64 bits by a multiply-xorshift hash over its 8-byte words, vectorised across strings
  (one numpy pass per word position);
- hashes are looked up in an open-addressing table (linear probing, load <= 1/2) by gathers.

Exactness: a hash is only ever a candidate. The bytes of a string and of the stored text it matched are compared
(vectorised, word by word); strings of the batch that share a hash are compared with the first of them likewise.
Strings whose comparison fails (two different texts with one hash: a collision) are resolved one by one in Python
against every stored text with that hash, so different texts always get different ids and equal texts one id.

Small batches (under `SMALL` strings) go through a {text: id} dict instead, built on first use and kept beside the
table: there a few hundred numpy calls would cost more than the dict steps. Both give the same ids.

Ids are dense 0..n-1 in order of first appearance. The texts are kept as one growing UTF-8 blob + offsets, which is
the snapshot format (`StringTable`), so a snapshot is written and restored without a per-string pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Sequence

import numpy as np

from linksyn.graph.snapshot import StringTable

_U64 = np.uint64
_C0, _C1 = _U64(0x9E3779B97F4A7C15), _U64(0xBF58476D1CE4E5B9)  # odd multipliers (golden ratio, splitmix64)
_C2, _C3 = _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53)  # murmur3's fmix64 constants
_NONE = np.zeros(0, np.int64)


# ---- encoding and hashing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedStrings:
    """Strings as one UTF-8 buffer: string i is buf[starts[i] : starts[i] + lengths[i]]. The buffer has at least 8
    bytes after the last string, so an 8-byte word can be read at any start."""

    buf: np.ndarray  # uint8
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64

    @classmethod
    def of(cls, items: Sequence[str]) -> "EncodedStrings":
        n = len(items)
        if n == 0:
            return cls(np.zeros(8, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))
        # ASCII (the common case) is encoded in one go, NUL separating the strings; a string holding NUL itself
        # shows up as a surplus separator. Anything else is encoded per string: a joined string with one wide
        # character is wide throughout, and encoding it costs more than the per-string calls.
        joined = "\0".join(items)
        if not joined.isascii():
            return cls.of_bytes([s.encode("utf-8") for s in items])
        buf = np.frombuffer((joined + "\0" * 8).encode("ascii"), np.uint8)  # read-only, no copy
        size = len(buf) - 8
        seps = np.flatnonzero(buf[:size] == 0)
        if len(seps) == n - 1:
            starts = np.empty(n, np.int64)
            starts[0] = 0
            starts[1:] = seps + 1
            lengths = np.empty(n, np.int64)
            lengths[:-1] = seps - starts[:-1]
            lengths[-1] = size - starts[-1]
            return cls(buf, starts, lengths)
        return cls.of_bytes([s.encode("utf-8") for s in items])

    @classmethod
    def of_bytes(cls, encoded: Sequence[bytes]) -> "EncodedStrings":
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        starts = np.zeros(len(encoded), np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        data = b"".join(encoded)
        buf = np.zeros(len(data) + 8, np.uint8)
        buf[: len(data)] = np.frombuffer(data, np.uint8)
        return cls(buf, starts, lengths)

    @classmethod
    def of_table(cls, t: StringTable) -> "EncodedStrings":
        n = len(t)
        buf = np.zeros(int(t.offsets[-1]) + 8, np.uint8)
        buf[: len(buf) - 8] = np.asarray(t.blob, dtype=np.uint8)[: len(buf) - 8]
        offsets = np.asarray(t.offsets, dtype=np.int64)
        return cls(buf, offsets[:n].copy(), np.diff(offsets))

    def words(self) -> np.ndarray:
        """The buffer as overlapping little-endian 8-byte words: words()[p] is bytes p..p+7."""
        return _words(self.buf)

    def text(self, i: int) -> str:
        s = int(self.starts[i])
        return self.buf[s : s + int(self.lengths[i])].tobytes().decode("utf-8")


def pack_strings(items: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(the strings' UTF-8 back to back (uint8), their byte lengths): a StringTable's parts. Same encoding choice as
    EncodedStrings.of, without separators."""
    joined = "".join(items)
    if joined.isascii():
        return np.frombuffer(joined.encode("ascii"), np.uint8), np.fromiter(map(len, items), np.int64, len(items))
    encoded = [s.encode("utf-8") for s in items]
    return np.frombuffer(b"".join(encoded), np.uint8), np.fromiter(map(len, encoded), np.int64, len(encoded))


def _words(buf: np.ndarray) -> np.ndarray:
    return np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))


def _word_steps(starts: np.ndarray, lengths: np.ndarray):
    """(index of the strings in this step (None: all), start of their k-th word, (which, mask) of the strings whose
    word needs masking or None) for k = 0, 1, ... A string of L >= 8 bytes is read as words at 0, 8, 16, ... with the
    last one at L-8 (overlapping the one before), so only strings shorter than 8 bytes (step 0) need a mask. Each
    step keeps only the strings still running, so a long string costs steps over itself alone."""
    short = lengths < 8
    masked = None
    if short.any():  # mask of the L low bytes; L = 0 shifts by 64, which numpy makes 0
        masked = short, (~_U64(0)) >> (_U64(64) - _U64(8) * lengths[short].astype(_U64))
    yield None, starts, masked
    if not len(lengths):
        return
    idx, ln, k = None, lengths, 1
    while True:
        more = ln > 8 * k
        if idx is not None or not more.all():
            idx = np.flatnonzero(more) if idx is None else idx[more]
            if not len(idx):
                return
            ln = lengths[idx]
        yield idx, (starts if idx is None else starts[idx]) + np.minimum(8 * k, ln - 8), None
        k += 1


def hash_strings(enc: EncodedStrings, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """64-bit hash (uint64, never 0) of the strings at starts/lengths of enc's buffer. Deterministic."""
    words = enc.words()
    h = lengths.astype(_U64) * _C0
    for idx, at, masked in _word_steps(starts, lengths):
        w = words[at]
        if masked is not None:
            w[masked[0]] &= masked[1]
        hk = h if idx is None else h[idx]
        hk ^= w
        hk *= _C1
        hk ^= hk >> _U64(29)
        if idx is not None:
            h[idx] = hk
    # murmur3's finaliser: every input bit reaches every output bit, so the top bits make good slot numbers
    h ^= h >> _U64(33)
    h *= _C2
    h ^= h >> _U64(33)
    h *= _C3
    h ^= h >> _U64(33)
    h[h == 0] = 1  # 0 marks an empty table slot
    return h


def equal_strings(
    words_a: np.ndarray, starts_a: np.ndarray, words_b: np.ndarray, starts_b: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Bytewise equality of pairs of strings of equal byte lengths, one in each word view."""
    shift = starts_b - starts_a
    eq = np.ones(len(lengths), dtype=bool)
    for idx, at, masked in _word_steps(starts_a, lengths):
        diff = words_a[at] ^ words_b[at + (shift if idx is None else shift[idx])]
        if masked is not None:
            diff[masked[0]] &= masked[1]
        nz = np.flatnonzero(diff)
        if len(nz):
            eq[nz if idx is None else idx[nz]] = False
    return eq


# ---- the index --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """What `StringIndex.find` saw: the id of every string looked up (ids from n_before on are for texts not in the
    index yet, numbered in order of first appearance), and what `StringIndex.add` needs to add those."""

    ids: np.ndarray
    """int64 id per string looked up."""
    new: np.ndarray
    """Positions (among the strings looked up) of the first occurrence of each new text, ascending: id n_before+j
    is the text at new[j]."""
    n_before: int
    empty: np.ndarray
    """Positions of the empty strings among those looked up."""
    items: Sequence[str]
    """Where the new texts are: items[item_of_new[j]] is new text j."""
    item_of_new: np.ndarray
    enc: EncodedStrings | None = None
    """The strings encoded (vectorised lookups): new text j is enc.buf[new_starts[j]:][:new_lengths[j]]."""
    new_starts: np.ndarray | None = None
    new_lengths: np.ndarray | None = None
    new_hashes: np.ndarray | None = None
    """hash_strings of the new texts (vectorised lookups)."""

    @property
    def n_new(self) -> int:
        return len(self.new)

    @property
    def new_texts(self) -> list[str]:
        return [self.items[i] for i in self.item_of_new.tolist()]


SMALL = 1024
"""Lookups of fewer strings go through a dict (built on first use): a vectorised lookup costs a few hundred numpy
calls, more than a dict for a handful of strings (the graph stage's batches of 64 seeds)."""


class StringIndex:
    """Append-only set of strings with dense ids (see the module docstring). Not thread-safe.

    Two lookups over one store of texts: the hash table for large batches, a {text: id} dict for small ones. The dict
    exists only once a small lookup happened, and the table catches up on texts added meanwhile before its next use.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._n = 0
        self._blob = np.zeros(1024, np.uint8)  # texts back to back, >= 8 spare bytes at the end (word reads)
        self._offsets = np.zeros(1025, np.int64)
        self._hash = np.zeros(1024, _U64)
        self._hashed = 0  # texts 0.._hashed-1 have their hash in _hash and are in the table
        self._dict: dict[str, int] | None = None
        self._new_table(capacity)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"StringIndex({self._n} strings, {int(self._offsets[self._n])} bytes)"

    # ---- reading ---------------------------------------------------------------------------------------------

    def text(self, i: int) -> str:
        return self._blob[self._offsets[i] : self._offsets[i + 1]].tobytes().decode("utf-8")

    def to_list(self) -> list[str]:
        return self.table().to_list()

    def table(self) -> StringTable:
        """A copy of the texts in id order."""
        return StringTable(self._blob[: self._offsets[self._n]].copy(), self._offsets[: self._n + 1].copy())

    def get(self, item: str) -> int | None:
        return self._text_ids().get(item)

    def __contains__(self, item: str) -> bool:
        return self.get(item) is not None

    # ---- lookup and insertion --------------------------------------------------------------------------------

    def find(self, items: Sequence[str], select: np.ndarray | None = None) -> Found:
        """Ids of items (or of items[select], select an int array of positions); changes nothing."""
        if (len(items) if select is None else len(select)) < SMALL:
            return self._find_small(items if select is None else [items[i] for i in select.tolist()])
        return self._find_vectorised(items, select)

    def _text_ids(self) -> dict[str, int]:
        if self._dict is None:
            self._dict = {t: i for i, t in enumerate(self.to_list())}
        return self._dict

    def _find_small(self, texts: Sequence[str]) -> Found:
        n = self._n
        ids = np.fromiter(map(self._text_ids().get, texts, repeat(-1)), dtype=np.int64, count=len(texts))
        new: list[int] = []
        miss = np.flatnonzero(ids < 0)
        if len(miss):
            fresh: dict[str, int] = {}
            for i in miss.tolist():
                j = fresh.setdefault(texts[i], len(fresh))
                if j == len(new):
                    new.append(i)
                ids[i] = n + j
        empty = np.array([i for i, t in enumerate(texts) if not t], dtype=np.int64) if "" in texts else _NONE
        new_at = np.asarray(new, dtype=np.int64)
        return Found(ids, new_at, n, empty, texts, new_at)

    def _find_vectorised(self, items: Sequence[str], select: np.ndarray | None) -> Found:
        return self.find_encoded(EncodedStrings.of(items), select, items)

    def find_encoded(self, enc: EncodedStrings, select: np.ndarray | None = None, items: Sequence[str] = ()) -> Found:
        """`find` over strings already encoded (items: the strings themselves, if at hand), vectorised."""
        self._sync_table()
        starts, lengths = (enc.starts, enc.lengths) if select is None else (enc.starts[select], enc.lengths[select])
        h = hash_strings(enc, starts, lengths)
        m, n = len(h), self._n
        ids = np.full(m, -1, np.int64)
        first = np.full(m, -1, np.int64)  # for strings of new texts: position of the text's first occurrence
        if not m:
            return Found(ids, ids, n, ids, items, ids, enc, starts, lengths, h)
        words = enc.words()
        slow: list[np.ndarray] = []

        # Group the batch by hash: one sort of (hash bits | position) keys puts each group together, its first
        # occurrence (the head, which stands for the group) in front, and the heads in hash order (table order).
        bits = _U64(int(m).bit_length())
        key = np.sort(((h >> bits) << bits) | np.arange(m, dtype=_U64))
        pos = (key & ((_U64(1) << bits) - _U64(1))).astype(np.int64)
        grp = key >> bits
        is_head = np.empty(m, dtype=bool)
        is_head[0] = True
        np.not_equal(grp[1:], grp[:-1], out=is_head[1:])
        heads = pos[is_head]
        members = pos[~is_head]
        if len(members):  # a member is the text of its head, checked bytewise
            at = np.flatnonzero(is_head)
            rep = np.repeat(heads, np.diff(np.r_[at, m]))[~is_head]
            ok = lengths[members] == lengths[rep]
            ok[ok] = equal_strings(words, starts[members[ok]], words, starts[rep[ok]], lengths[members[ok]])
            if not ok.all():
                slow.append(members[~ok])
                members, rep = members[ok], rep[ok]

        # Heads against the index: a hash match is checked bytewise against the stored text.
        cand = self._probe(h[heads])
        hit = cand >= 0
        if hit.any():
            known, hp = cand[hit], heads[hit]
            kstart = self._offsets[known]
            ok = self._offsets[known + 1] - kstart == lengths[hp]
            ok[ok] = equal_strings(words, starts[hp[ok]], _words(self._blob), kstart[ok], lengths[hp[ok]])
            ids[hp[ok]] = known[ok]
            if not ok.all():
                slow.append(hp[~ok])
        fresh = heads[~hit]
        first[fresh] = fresh

        if slow:
            self._resolve_slow(np.sort(np.concatenate(slow)), enc, starts, lengths, h, ids, first)
        if len(members):
            ids[members] = ids[rep]
            first[members] = first[rep]
        new = np.flatnonzero(first == np.arange(m))
        is_new = first >= 0
        ids[is_new] = n + np.searchsorted(new, first[is_new])
        return Found(ids, new, n, np.flatnonzero(lengths == 0), items, new if select is None else select[new],
                     enc, starts[new], lengths[new], h[new])

    def _resolve_slow(self, slow, enc, starts, lengths, h, ids, first) -> None:
        """Strings whose hash matched a different text: compare in Python with every text of that hash."""
        firsts: dict[str, int] = {}
        for i in slow.tolist():
            s = int(starts[i])
            text = enc.buf[s : s + int(lengths[i])].tobytes().decode("utf-8")
            known = next((j for j in self._ids_with_hash(h[i]) if self.text(j) == text), None)
            if known is not None:
                ids[i] = known
            else:
                first[i] = firsts.setdefault(text, i)

    def _ids_with_hash(self, hv: np.uint64) -> list[int]:
        out = []
        p = self._home(np.asarray([hv]))[0]
        while self._slot_hash[p] != 0:
            if self._slot_hash[p] == hv:
                out.append(int(self._slot_id[p]))
            p = (p + 1) & (self._cap - 1)
        return out

    def add(self, found: Found) -> None:
        """Add the new texts of `found` (which must have been taken from this index as it is now)."""
        if found.n_before != self._n:
            raise ValueError(f"stale lookup: made when the index had {found.n_before} strings, it has {self._n}")
        k = found.n_new
        if not k:
            return
        if found.enc is None:
            encoded = [t.encode("utf-8") for t in found.new_texts]
            data = np.frombuffer(b"".join(encoded), np.uint8)
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=k)
        else:
            data, lengths = _gather_bytes(found.enc.buf, found.new_starts, found.new_lengths), found.new_lengths
        used = int(self._offsets[self._n])
        self._blob = _reserve(self._blob, used + len(data) + 8)
        self._offsets = _reserve(self._offsets, self._n + k + 1)
        self._hash = _reserve(self._hash, self._n + k)
        self._blob[used : used + len(data)] = data
        self._offsets[self._n + 1 : self._n + k + 1] = used + np.cumsum(lengths)
        if self._dict is not None:
            texts = found.new_texts if len(found.items) else [found.enc.text(i) for i in found.item_of_new.tolist()]
            self._dict.update(zip(texts, range(self._n, self._n + k)))
        if found.new_hashes is not None and self._hashed == self._n:
            self._hash[self._n : self._n + k] = found.new_hashes
            self._n += k
            self._hashed = self._n
            self._insert_into_table(self._n - k)
        else:
            self._n += k  # the table catches up when next used

    def intern(self, items: Sequence[str], select: np.ndarray | None = None) -> np.ndarray:
        """find + add: the id of every item, new texts added."""
        found = self.find(items, select)
        self.add(found)
        return found.ids

    @classmethod
    def from_table(cls, t: StringTable) -> "StringIndex":
        """The index of a table's strings, ids = positions; ValueError naming a repeated string if there is one."""
        index = cls(capacity=2 * len(t))
        enc = EncodedStrings.of_table(t)
        found = index.find_encoded(enc)
        if found.n_new != len(t):
            i = int(np.flatnonzero(found.ids != np.arange(len(t)))[0])
            raise ValueError(f"string {enc.text(i)!r} is repeated (positions {found.ids[i]} and {i})")
        index._blob = enc.buf.copy()
        index._offsets = np.asarray(t.offsets, dtype=np.int64).copy()
        index._hash = found.new_hashes.copy()
        index._n = index._hashed = len(t)
        index._rebuild(2 * len(t))
        return index

    # ---- the hash table ----------------------------------------------------------------------------------------

    def _sync_table(self) -> None:
        """Hash and insert the texts added through the dict path since the table was last used."""
        if self._hashed < self._n:
            a, b = self._hashed, self._n
            enc = EncodedStrings(self._blob, self._offsets[a:b], np.diff(self._offsets[a : b + 1]))
            self._hash[a:b] = hash_strings(enc, enc.starts, enc.lengths)
            self._hashed = b
            self._insert_into_table(a)

    def _insert_into_table(self, since: int) -> None:
        if 2 * self._n > self._cap:  # load <= 1/2 keeps probe runs short
            self._rebuild(2 * self._n)
        else:
            self._insert(self._hash[since : self._n], np.arange(since, self._n, dtype=np.int64))

    def _rebuild(self, capacity: int) -> None:
        """A new table holding every text, built in one pass: entries sorted by home slot, each placed at its home
        or right after the one before it (what inserting them in that order does); the few that run past the end
        wrap around through `_insert`."""
        self._new_table(capacity)
        n = self._n
        key = np.sort((self._home(self._hash[:n]).astype(_U64) << _U64(32)) | np.arange(n, dtype=_U64))
        home = (key >> _U64(32)).astype(np.int64)
        ids = (key & _U64(0xFFFFFFFF)).astype(np.int64)
        rank = np.arange(n, dtype=np.int64)
        pos = np.maximum.accumulate(home - rank) + rank
        inside = pos < self._cap
        self._slot_hash[pos[inside]] = self._hash[ids[inside]]
        self._slot_id[pos[inside]] = ids[inside]
        if not inside.all():
            self._insert(self._hash[ids[~inside]], ids[~inside])

    def _new_table(self, capacity: int) -> None:
        self._bits = max(4, int(capacity - 1).bit_length())
        self._cap = 1 << self._bits
        self._slot_hash = np.zeros(self._cap, _U64)
        self._slot_id = np.full(self._cap, -1, np.int64)

    def _home(self, h: np.ndarray) -> np.ndarray:
        """Home slot of each hash: its top bits, so hashes in sorted order visit the table in order."""
        return (h >> _U64(64 - self._bits)).astype(np.int64)

    def _probe(self, h: np.ndarray) -> np.ndarray:
        """Per hash, the id of the first table entry with that hash, -1 if none (linear probing, one slot a round)."""
        out = np.full(len(h), -1, np.int64)
        p = self._home(h)
        todo = np.arange(len(h))
        mask = self._cap - 1
        while len(todo):
            s = self._slot_hash[p]
            hit = s == h
            out[todo[hit]] = self._slot_id[p[hit]]
            go_on = ~hit & (s != 0)
            todo, h, p = todo[go_on], h[go_on], (p[go_on] + 1) & mask
        return out

    def _insert(self, h: np.ndarray, ids: np.ndarray) -> None:
        """Put (hash, id) entries in the first empty slot from their home slot on (linear probing)."""
        p = self._home(h)
        mask = self._cap - 1
        while len(p):
            empty = self._slot_hash[p] == 0
            e, ide = p[empty], ids[empty]
            self._slot_id[e] = ide  # several may claim one slot: one write sticks, and that entry has it
            won = self._slot_id[e] == ide
            self._slot_hash[e[won]] = h[empty][won]
            stay = np.ones(len(p), dtype=bool)
            stay[np.flatnonzero(empty)[won]] = False
            h, ids = h[stay], ids[stay]
            p = np.where(empty[stay], p[stay], (p[stay] + 1) & mask)  # a loser looks at its slot again


def _gather_bytes(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """buf[starts[0]:][:lengths[0]] + buf[starts[1]:][:lengths[1]] + ... as one uint8 array."""
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if len(ends) else 0
    if total and starts[-1] + lengths[-1] - starts[0] == total:  # already back to back
        return buf[starts[0] : starts[0] + total]
    return buf[np.repeat(starts - (ends - lengths), lengths) + np.arange(total)]


def _reserve(a: np.ndarray, size: int) -> np.ndarray:
    """`a`, or a copy with room for `size` elements (grown geometrically)."""
    if len(a) >= size:
        return a
    out = np.zeros(max(size, 2 * len(a)), dtype=a.dtype)
    out[: len(a)] = a
    return out
