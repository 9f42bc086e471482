"""Exact string -> dense id interning over byte buffers, compiled with numba (domain code: no I/O).

Why not a dict: a graph ingest of a million seeds looks up about six million strings (seed ids, KP texts,
disciplines); a dict costs a Python-level step per string and tens of bytes per entry. Here a batch costs a few
Python calls whatever its size (even one string: the graph stage's batches of 64 seeds ingest 3x faster this way
than through a dict, measured, so there is no dict path):
- the batch is joined into one UTF-8 buffer in C ("\\0".join; non-ASCII text or a string holding NUL is encoded
  per string instead), and a kernel finds the separators;
- one kernel (`_find`) does the lookup in passes over the batch: it hashes each string to 64 bits
  (multiply-xorshift over its 8-byte words, murmur3's finaliser); folds the batch's repeats against a batch-local
  table, so only distinct texts go on; probes the index's open-addressing table for those (linear probing, load
  <= 1/2, a 32-bit tag of the hash and the id in one 8-byte slot); compares the bytes of every match against the
  stored text; numbers the texts not in the index in order of first appearance. Each pass is a short loop whose
  iterations do not wait on each other, prefetching a few strings ahead, so the cache misses of many strings
  overlap (the table and the texts are far larger than the caches).

Exactness: a hash (or tag) match is only ever a candidate; a string gets an id only after a bytewise comparison,
and a candidate that fails it sends the string to a slow path that compares it with every possible match, so
different texts always get different ids (however their hashes collide) and equal texts one id.
`StringIndex(hash_bits=k)` keeps only k varying hash bits (the others set), which forces collisions in tests:
hash_bits=0 gives every string the same hash, whose probe runs start in the table's last slot and wrap around, and
any hash_bits <= 32 gives every string the same tag.

`find` changes nothing (the batch-local table lives in the call); `add` appends the new texts and inserts them.
Ids are dense 0..n-1 in order of first appearance. The texts are kept as one growing UTF-8 blob + offsets, which is
the snapshot format (`StringTable`), so a snapshot is written and restored without a per-string pass.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from linksyn.common.snapshots.graph import StringTable
from linksyn.common.compiled import inline, kernel
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_U64 = np.uint64
_C0, _C1 = _U64(0x9E3779B97F4A7C15), _U64(0xBF58476D1CE4E5B9)  # odd multipliers (golden ratio, splitmix64)
_C2, _C3 = _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53)  # murmur3's fmix64 constants
_LOW32 = _U64(0xFFFFFFFF)
_MAX_TEXTS = 2**32 - 1

if sys.byteorder != "little":  # the kernels mask the first bytes of a string as the low bytes of a word
    raise ImportError(f"linksyn.graph.interning needs a little-endian machine, this one is {sys.byteorder}-endian")


# ---- encoding ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedStrings:
    """Strings as one UTF-8 buffer: string i is buf[starts[i] : starts[i] + lengths[i]]. The buffer has at least 8
    bytes after the last string, so an 8-byte word can be read at any start."""

    buf: np.ndarray  # uint8, read-only (one kind of array for the kernels)
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64

    @classmethod
    def of(cls, items: Sequence[str]) -> "EncodedStrings":
        n = len(items)
        if n == 0:
            return cls.of_bytes([])
        # ASCII (the common case) is encoded in one go, NUL separating the strings; a string holding NUL itself
        # shows up as a surplus separator. Anything else is encoded per string: a joined string with one wide
        # character is wide throughout, and encoding it costs more than the per-string calls.
        joined = "\0".join(items)
        if joined.isascii():
            buf = np.frombuffer((joined + "\0" * 8).encode("ascii"), np.uint8)  # read-only, no copy
            starts, lengths, ok = _split_at_nul(buf, len(buf) - 8, n)
            if ok:
                return cls(buf, starts, lengths)
        return cls.of_bytes([s.encode("utf-8") for s in items])

    @classmethod
    def of_bytes(cls, encoded: Sequence[bytes]) -> "EncodedStrings":
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        starts = np.zeros(len(encoded), np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        return cls(np.frombuffer(b"".join(encoded) + bytes(8), np.uint8), starts, lengths)

    @classmethod
    def of_table(cls, t: StringTable) -> "EncodedStrings":
        n = len(t)
        buf = np.zeros(int(t.offsets[-1]) + 8, np.uint8)
        buf[: len(buf) - 8] = np.asarray(t.blob, dtype=np.uint8)[: len(buf) - 8]
        buf.flags.writeable = False
        offsets = np.asarray(t.offsets, dtype=np.int64)
        return cls(buf, offsets[:n].copy(), np.diff(offsets))

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


# ---- compiler intrinsics (here, beside the kernels that use them: see linksyn.common.compiled) ------------------------


@intrinsic
def prefetch(typingctx, array, index):  # noqa: ARG001 (numba's intrinsic signature)
    """prefetch(array, i): ask the CPU to bring array[i]'s cache line in (for reading, into every cache level) while
    the loop goes on: a kernel probing a table larger than the caches starts the misses of the next strings early
    instead of waiting on each in turn. A hint: no effect on any value, and an index past the end is harmless."""

    def codegen(context, builder, signature, args):
        aryty, _ = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [cgutils.voidptr_t], fnty)
        builder.call(fn, [builder.bitcast(ptr, cgutils.voidptr_t), i32(0), i32(3), i32(1)])  # read, keep, data
        return context.get_dummy_value()

    return types.void(array, index), codegen


@intrinsic
def load_word(typingctx, array, index):  # noqa: ARG001
    """load_word(buf, p): bytes p..p+7 of a uint8 array as one little-endian uint64, in one unaligned load.
    (Assembling the word from eight byte loads is what plain numba code gives: LLVM merges those loads only
    sometimes, and the kernels read words in their innermost loops.) The caller makes sure p+7 is inside."""

    def codegen(context, builder, signature, args):
        aryty, _ = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i64 = ir.IntType(64)
        word = builder.load(builder.bitcast(ptr, i64.as_pointer()), align=1)
        return word

    return types.uint64(array, index), codegen


# ---- kernels ----------------------------------------------------------------------------------------------------


@inline
def _word(buf: np.ndarray, p: int) -> np.uint64:
    """Bytes p..p+7 as a little-endian word."""
    return load_word(buf, p)


@inline
def _low_bytes(length: int) -> np.uint64:
    """Mask of the `length` (1..7) low bytes of a word."""
    return (_U64(1) << _U64(8 * length)) - _U64(1)


@inline
def _mix(h: np.uint64, w: np.uint64) -> np.uint64:
    h ^= w
    h *= _C1
    return h ^ (h >> _U64(29))


@inline
def _finish(h: np.uint64, length: int) -> np.uint64:
    """The hash of a string whose words were mixed into h: its length, then murmur3's finaliser (every input bit
    reaches every output bit, so the low bits make good slot numbers and the high ones good tags); never 0."""
    h ^= _U64(length) * _C0
    h ^= h >> _U64(33)
    h *= _C2
    h ^= h >> _U64(33)
    h *= _C3
    h ^= h >> _U64(33)
    return h if h else _U64(1)


@inline
def _hash(buf: np.ndarray, s: int, length: int) -> np.uint64:
    """64-bit hash of buf[s:s+length], never 0. The words mixed: for a string of < 8 bytes its bytes (none for
    the empty string); else words at 0, 8, 16, ... with the last one at length-8 (overlapping the one before)."""
    h = _C1
    if length >= 8:
        k = 0
        while k + 8 < length:
            h = _mix(h, _word(buf, s + k))
            k += 8
        h = _mix(h, _word(buf, s + length - 8))
    elif length > 0:
        h = _mix(h, _word(buf, s) & _low_bytes(length))
    return _finish(h, length)


@inline
def _equal(a: np.ndarray, sa: int, b: np.ndarray, sb: int, length: int) -> bool:
    """a[sa:sa+length] == b[sb:sb+length], a word at a time (both buffers readable 8 bytes past each start)."""
    if length < 8:
        return length == 0 or ((_word(a, sa) ^ _word(b, sb)) & _low_bytes(length)) == 0
    k = 0
    while k + 8 < length:
        if _word(a, sa + k) != _word(b, sb + k):
            return False
        k += 8
    return _word(a, sa + length - 8) == _word(b, sb + length - 8)


@kernel
def _split_at_nul(buf: np.ndarray, size: int, n: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(starts, lengths, True) of the n NUL-separated strings of buf[:size]; False if it holds another count of
    NULs (a string with a NUL of its own). Byte by byte without a branch on the byte (a mispredicted branch at
    every string end costs more than looking at every byte)."""
    seps = np.empty(n, np.int64)
    k = 0
    for p in range(size):
        seps[k] = p  # kept only if buf[p] is a NUL
        k += buf[p] == 0
        if k == n:
            return seps, seps, False
    starts = np.empty(n, np.int64)
    lengths = np.empty(n, np.int64)
    if k != n - 1:
        return starts, lengths, False
    seps[n - 1] = size
    start = 0
    for i in range(n):
        starts[i] = start
        lengths[i] = seps[i] - start
        start = seps[i] + 1
    return starts, lengths, True


_AHEAD = 16
"""How many strings ahead the kernels prefetch table slots and texts (enough to cover a memory latency)."""


@kernel
def _find(
    buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, skip_empty: bool, fill: np.uint64,
    slots: np.ndarray, blob: np.ndarray, offsets: np.ndarray, n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(id of every string, positions of the first occurrences of texts not in the index, their hashes).
    `fill`: hash bits the index sets (see StringIndex). `slots`: the index's table (see `_tag`); texts not in it
    get ids n, n+1, ... in order of first appearance. skip_empty: empty strings get id -1 instead.

    The batch's repeats are folded first, against a small batch-local table that stays in cache, so only its
    distinct texts probe the index (a batch of KPs repeats popular ones many times). Then passes over those: probe
    for the first entry with the text's tag, check that entry's bytes, number the new texts. The index's table and
    texts are far larger than the caches, so each pass prefetches what it reads a few strings ahead."""
    m = len(starts)
    hashes = np.empty(m, np.uint64)
    for i in range(m):
        hashes[i] = _hash(buf, starts[i], lengths[i]) | fill
    first = np.empty(m, np.int64)  # position of the first occurrence of the string's text in the batch
    heads = np.empty(m, np.int64)  # positions of the first occurrences, ascending
    d = 0
    local_size = 16
    while local_size < 2 * m:
        local_size *= 2
    local = np.zeros(local_size, _U64)  # tag << 32 | (1 + position of a first occurrence), 0 = empty
    local_mask = len(local) - 1
    for i in range(m):
        if i + _AHEAD < m:
            prefetch(local, np.int64(hashes[i + _AHEAD]) & local_mask)
        s, length = starts[i], lengths[i]
        if skip_empty and length == 0:
            first[i] = -1
            continue
        h = hashes[i]
        tag = _tag(h)
        q = np.int64(h) & local_mask
        while True:
            e = local[q]
            if e == 0:
                local[q] = (tag << _U64(32)) | _U64(i + 1)
                heads[d] = i
                first[i] = i
                d += 1
                break
            if (e >> _U64(32)) == tag:  # taken as a repeat; the bytes are compared in the next pass
                first[i] = np.int64(e & _LOW32) - 1
                break
            q = (q + 1) & local_mask
    # Each repeat's bytes against its first occurrence's, in a pass of its own: the loop above would wait on every
    # comparison's loads, here they overlap. A tag shared by different texts (practically never, unless a test
    # forces collisions) sends the string to `_resolve`.
    for i in range(m):
        f = first[i]
        if f >= 0 and f != i:
            length = lengths[i]
            if lengths[f] != length or not _equal(buf, starts[i], buf, starts[f], length):
                d = _resolve(i, buf, starts, lengths, first, heads, d)
    head_id = np.empty(d, np.int64)
    mask = len(slots) - 1
    for x in range(d):  # the first table entry with the head's tag, if any
        if x + _AHEAD < d:
            prefetch(slots, np.int64(hashes[heads[x + _AHEAD]]) & mask)
        h = hashes[heads[x]]
        tag = _tag(h)
        p = np.int64(h) & mask
        head_id[x] = -1
        while slots[p] != 0:
            if (slots[p] >> _U64(32)) == tag:
                head_id[x] = np.int64(slots[p] & _LOW32)
                break
            p = (p + 1) & mask
    for x in range(d):  # is it the text? (almost always; else a full probe, comparing every entry with the tag)
        if x + 2 * _AHEAD < d and head_id[x + 2 * _AHEAD] >= 0:
            prefetch(offsets, head_id[x + 2 * _AHEAD])
        if x + _AHEAD < d and head_id[x + _AHEAD] >= 0:
            prefetch(blob, offsets[head_id[x + _AHEAD]])
        j = head_id[x]
        if j >= 0:
            i = heads[x]
            o, length = offsets[j], lengths[i]
            if offsets[j + 1] - o != length or not _equal(buf, starts[i], blob, o, length):
                head_id[x] = _probe(buf, starts[i], length, hashes[i], slots, blob, offsets)
    k = 0
    for x in range(d):  # texts new to the index, numbered in order of first appearance
        if head_id[x] < 0:
            head_id[x] = n + k
            heads[k] = heads[x]  # heads[:k] becomes the new texts' positions (k <= x: nothing unread is lost)
            k += 1
    ids = np.empty(m, np.int64)
    x = 0
    for i in range(m):
        f = first[i]
        if f < 0:
            ids[i] = -1
        elif f == i:  # a head: heads come in ascending order
            ids[i] = head_id[x]
            x += 1
        else:
            ids[i] = ids[f]
    new = heads[:k].copy()
    return ids, new, hashes[new]


@inline
def _resolve(i: int, buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, first: np.ndarray,
             heads: np.ndarray, d: int) -> int:
    """first[i] by comparing string i with every first occurrence before it (strings before i are resolved, so
    those are heads[:d] below i); if none is its text, i becomes a head, in its place. Returns the new head count."""
    length = lengths[i]
    x = 0
    while x < d and heads[x] < i:
        f = heads[x]
        if lengths[f] == length and _equal(buf, starts[i], buf, starts[f], length):
            first[i] = f
            return d
        x += 1
    for y in range(d, x, -1):
        heads[y] = heads[y - 1]
    heads[x] = i
    first[i] = i
    return d + 1


@inline
def _probe(buf: np.ndarray, s: int, length: int, h: np.uint64, slots: np.ndarray, blob: np.ndarray,
           offsets: np.ndarray) -> int:
    """Id of the text buf[s:s+length] (hash h) in the table, -1 if absent: every entry with its tag is compared."""
    mask = len(slots) - 1
    tag = _tag(h)
    p = np.int64(h) & mask
    while slots[p] != 0:
        if (slots[p] >> _U64(32)) == tag:
            j = np.int64(slots[p] & _LOW32)
            o = offsets[j]
            if offsets[j + 1] - o == length and _equal(buf, s, blob, o, length):
                return j
        p = (p + 1) & mask
    return -1


@inline
def _tag(h: np.uint64) -> np.uint64:
    """The high half of a hash, never 0: a table slot holds tag << 32 | id, so 0 is an empty slot. The low bits
    of the hash pick the slot; the tag rules out nearly every other text before any bytes are compared."""
    t = h >> _U64(32)
    return t if t else _U64(1)


@inline
def _insert(slots: np.ndarray, h: np.uint64, i: int) -> None:
    mask = len(slots) - 1
    p = np.int64(h) & mask
    while slots[p] != 0:
        p = (p + 1) & mask
    slots[p] = (_tag(h) << _U64(32)) | _U64(i)


@kernel
def _append(
    blob: np.ndarray, offsets: np.ndarray, hashes: np.ndarray, slots: np.ndarray, n: int,
    buf: np.ndarray, new_starts: np.ndarray, new_lengths: np.ndarray, new_hashes: np.ndarray,
) -> None:
    """Texts n, n+1, ...: their bytes (from buf) after the blob's, their offsets and hashes, their table entries.
    The arrays have room (StringIndex.add reserves it)."""
    at = offsets[n]
    mask = len(slots) - 1
    for j in range(len(new_starts)):
        if j + _AHEAD < len(new_starts):
            prefetch(slots, np.int64(new_hashes[j + _AHEAD]) & mask)
        s, length = new_starts[j], new_lengths[j]
        blob[at : at + length] = buf[s : s + length]
        at += length
        offsets[n + j + 1] = at
        hashes[n + j] = new_hashes[j]
        _insert(slots, new_hashes[j], n + j)


@kernel
def _insert_all(slots: np.ndarray, hashes: np.ndarray, n: int) -> None:
    """Texts 0..n-1 into an empty table (after it grew)."""
    mask = len(slots) - 1
    for i in range(n):
        if i + _AHEAD < n:
            prefetch(slots, np.int64(hashes[i + _AHEAD]) & mask)
        _insert(slots, hashes[i], i)


# ---- the index --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """What `StringIndex.find` saw: the id of every string looked up (ids from n_before on are for texts not in the
    index yet, numbered in order of first appearance), and what `StringIndex.add` needs to add those."""

    ids: np.ndarray
    """int64 id per string looked up (-1: an empty string skipped by skip_empty)."""
    new: np.ndarray
    """Positions (among the strings looked up) of the first occurrence of each new text, ascending: id n_before+j
    is the text at new[j]."""
    n_before: int
    empty: np.ndarray
    """Positions of the empty strings among those looked up."""
    enc: EncodedStrings
    """The strings encoded: new text j is enc.buf[new_starts[j]:][:new_lengths[j]]."""
    new_starts: np.ndarray
    new_lengths: np.ndarray
    new_hashes: np.ndarray
    """The new texts' hashes (as the index hashes them: `_hash` with its fill bits), inserted by `add`."""

    @property
    def n_new(self) -> int:
        return len(self.new)

    @property
    def new_texts(self) -> list[str]:
        buf = self.enc.buf
        return [buf[s : s + n].tobytes().decode("utf-8") for s, n in zip(self.new_starts.tolist(),
                                                                         self.new_lengths.tolist())]


class StringIndex:
    """Append-only set of strings with dense ids (see the module docstring). Not thread-safe.

    capacity: table slots to start with (it doubles as texts arrive). hash_bits: how many bits of the 64-bit hash
    vary, the rest set to 1; below 64 only to force collisions in tests."""

    def __init__(self, capacity: int = 1024, hash_bits: int = 64) -> None:
        if not 0 <= hash_bits <= 64:
            raise ValueError(f"hash_bits must be 0..64, got {hash_bits}")
        self.hash_bits = hash_bits
        self._fill = _U64(~((1 << hash_bits) - 1) & (2**64 - 1))  # hash bits forced to 1
        self._n = 0
        self._blob = np.zeros(1024, np.uint8)  # texts back to back, >= 8 spare bytes at the end (word reads)
        self._offsets = np.zeros(1025, np.int64)
        self._hash = np.zeros(1024, _U64)  # per text: its hash, to refill a grown table without rehashing
        self._slots = np.zeros(_table_size(capacity), _U64)  # see _tag

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
        i = int(self.find([item]).ids[0])
        return i if i < self._n else None

    def __contains__(self, item: str) -> bool:
        return self.get(item) is not None

    # ---- lookup and insertion --------------------------------------------------------------------------------

    def find(self, items: Sequence[str], select: np.ndarray | None = None, skip_empty: bool = False) -> Found:
        """Ids of items (or of items[select], select an int array of positions); changes nothing. skip_empty:
        empty strings get id -1 and are never added."""
        return self.find_encoded(EncodedStrings.of(items), select, skip_empty)

    def find_encoded(self, enc: EncodedStrings, select: np.ndarray | None = None, skip_empty: bool = False) -> Found:
        """`find` over strings already encoded."""
        starts, lengths = (enc.starts, enc.lengths) if select is None else (enc.starts[select], enc.lengths[select])
        if len(starts) > _MAX_TEXTS:
            raise OverflowError(f"{len(starts)} strings in one lookup exceed {_MAX_TEXTS} (32-bit positions)")
        ids, new, new_hashes = _find(enc.buf, starts, lengths, skip_empty, self._fill, self._slots, self._blob,
                                     self._offsets, self._n)
        return Found(ids, new, self._n, np.flatnonzero(lengths == 0), enc, starts[new], lengths[new], new_hashes)

    def add(self, found: Found) -> None:
        """Add the new texts of `found` (which must have been taken from this index as it is now)."""
        if found.n_before != self._n:
            raise ValueError(f"stale lookup: made when the index had {found.n_before} strings, it has {self._n}")
        k = found.n_new
        if not k:
            return
        n = self._n
        if n + k > _MAX_TEXTS:
            raise OverflowError(f"{n + k} strings exceed the index's {_MAX_TEXTS} (32-bit ids in its table)")
        self._blob = _reserve(self._blob, int(self._offsets[n]) + int(found.new_lengths.sum()) + 8)
        self._offsets = _reserve(self._offsets, n + k + 1)
        self._hash = _reserve(self._hash, n + k)
        if 2 * (n + k) > len(self._slots):  # load <= 1/2 keeps probe runs short
            self._slots = np.zeros(_table_size(2 * (n + k)), _U64)
            _insert_all(self._slots, self._hash, n)
        _append(self._blob, self._offsets, self._hash, self._slots, n, found.enc.buf, found.new_starts,
                found.new_lengths, found.new_hashes)
        self._n = n + k

    def intern(self, items: Sequence[str], select: np.ndarray | None = None) -> np.ndarray:
        """find + add: the id of every item, new texts added."""
        found = self.find(items, select)
        self.add(found)
        return found.ids

    @classmethod
    def from_table(cls, t: StringTable, hash_bits: int = 64) -> "StringIndex":
        """The index of a table's strings, ids = positions; ValueError naming a repeated string if there is one."""
        index = cls(capacity=2 * len(t), hash_bits=hash_bits)
        enc = EncodedStrings.of_table(t)
        found = index.find_encoded(enc)
        if found.n_new != len(t):
            i = int(np.flatnonzero(found.ids != np.arange(len(t)))[0])
            raise ValueError(f"string {enc.text(i)!r} is repeated (positions {found.ids[i]} and {i})")
        index.add(found)
        return index


def _table_size(capacity: int) -> int:
    """Slots of a table for `capacity` entries: a power of two (the slot of a hash is its low bits), >= 16."""
    return 1 << max(4, int(capacity - 1).bit_length())


def _reserve(a: np.ndarray, size: int) -> np.ndarray:
    """`a`, or a copy with room for `size` elements (grown geometrically)."""
    if len(a) >= size:
        return a
    out = np.zeros(max(size, 2 * len(a)), dtype=a.dtype)
    out[: len(a)] = a
    return out
