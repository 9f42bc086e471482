"""Near-duplicate detection: MinHash signatures of a batch in one compiled pass, LSH banding, and the bounded window
of recent kept records that each partition screens against (pure, in memory).

Signatures: MinHash over word shingles with datasketch's permutations (affine32 scheme: `(a * x + b) mod 2^32`),
computed for a whole batch by a numba kernel. LSH: datasketch's choice of (bands, rows) for the threshold; a band's key
is a hash of its rows. A candidate (a kept record sharing a band key) counts as a near duplicate only if the
signatures agree on enough positions; agreement is measured on the low 8 bits of each value (b-bit MinHash, Li and
Koenig 2010), 128 bytes a record instead of 512: a position agrees by chance with probability 1/256, which the
estimate takes out.

The window holds between `capacity/2` and `capacity` of a partition's most recent kept records, in two generations
of `capacity/2`: when the newer one is full, the older is dropped and a new one starts. Its size bounds the sink's
memory whatever the number of records; near duplicates further apart than the window (or in other partitions) are
left to the global pass (`linksyn near-dups`, datatrove's MinHash deduplication over the finished dataset).
Rotation points depend only on the count of kept records, so a window rebuilt from the persisted state after a
restart is the window the partition had.
"""

from __future__ import annotations

import functools

import numpy as np
from datasketch import MinHash
from datasketch.lsh import _optimal_param
from linksyn.common.compiled import kernel
from linksyn.sink.ngrams import gram_hashes, whole_text_hashes

MINHASH_SEED = 1
SIG_BITS = 8
"""Bits of each MinHash value kept for verifying candidates (b-bit MinHash)."""


@kernel
def _minhash(grams, owners, a, b, out):  # pragma: no cover - compiled
    """out[owner] = min over the owner's grams of (a * gram + b) mod 2^32, per permutation (out starts at max)."""
    perms = len(a)
    for k in range(len(grams)):
        x = grams[k]
        row = owners[k]
        for j in range(perms):
            v = np.uint32(x * a[j] + b[j])
            if v < out[row, j]:
                out[row, j] = v


class MinHasher:
    """Batch MinHash signatures (uint32, num_perm columns) of texts' word shingles."""

    def __init__(self, num_perm: int = 128, shingle_words: int = 3, seed: int = MINHASH_SEED) -> None:
        self.num_perm = num_perm
        self.shingle_words = shingle_words
        self.seed = seed
        a, b = MinHash(num_perm=num_perm, seed=seed).permutations
        self.a = a.astype(np.uint32)
        self.b = b.astype(np.uint32)

    def signatures(self, words: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
        """(n, num_perm) uint32 signatures of n texts given as word hashes with their text index (in text order,
        linksyn.sink.tokens). A text shorter than a shingle is one shingle of all its words; an empty text gets the
        all-max signature."""
        g, o = gram_hashes(words, owners, self.shingle_words)
        lengths = np.bincount(owners, minlength=n)
        if ((lengths > 0) & (lengths < self.shingle_words)).any():  # rare: texts shorter than one shingle
            wh, wo = whole_text_hashes(words, owners, n)
            short = (lengths[wo] < self.shingle_words)
            g = np.concatenate([g, wh[short]])
            o = np.concatenate([o, wo[short]])
        g32 = (g ^ (g >> np.uint64(32))).astype(np.uint32)
        sig = np.full((n, self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        _minhash(g32, o, self.a, self.b, sig)
        return sig


_BAND_MULT = np.uint64(0x100000001B3)


@functools.cache
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) minimising false positives + negatives at `threshold` (datasketch's optimiser, which
    integrates numerically: tens of milliseconds, hence cached)."""
    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: a hash of each band's `rows` signature values, never 0 (0 marks an empty table slot)."""
    s = sigs[:, : bands * rows].reshape(len(sigs), bands, rows).astype(np.uint64)
    acc = np.zeros((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(rows):
            acc = acc * _BAND_MULT + s[:, :, j]
    return acc | np.uint64(1)


def short_signatures(sigs: np.ndarray) -> np.ndarray:
    """The low SIG_BITS bits of every value: what the window keeps to verify candidates."""
    return (sigs & np.uint32((1 << SIG_BITS) - 1)).astype(np.uint8)


def min_agreement(threshold: float, num_perm: int) -> int:
    """Positions two short signatures must agree on for an estimated Jaccard similarity >= threshold: a position
    agrees with probability J + (1 - J) / 2^SIG_BITS."""
    chance = 1.0 / (1 << SIG_BITS)
    return int(np.ceil(num_perm * (threshold + (1.0 - threshold) * chance) - 1e-9))


@kernel
def _lookup(tables, slots, sigs, keys, sig, need):  # pragma: no cover - compiled
    """Is there an entry sharing one of `keys` (one per band) whose short signature agrees with `sig` on >= need
    positions? tables/slots: (bands, size) open-addressing tables (key 0 = empty), size a power of two."""
    mask = tables.shape[1] - 1
    perms = len(sig)
    for band in range(len(keys)):
        key = keys[band]
        i = np.int64(key & np.uint64(mask))
        while True:
            k = tables[band, i]
            if k == 0:
                break
            if k == key:
                row = slots[band, i]
                same = 0
                for j in range(perms):
                    if sigs[row, j] == sig[j]:
                        same += 1
                if same >= need:
                    return True
            i = (i + 1) & mask
    return False


@kernel
def _insert(tables, slots, sigs, row, keys, sig):  # pragma: no cover - compiled
    mask = tables.shape[1] - 1
    sigs[row, :] = sig
    for band in range(len(keys)):
        key = keys[band]
        i = np.int64(key & np.uint64(mask))
        while tables[band, i] != 0:
            i = (i + 1) & mask
        tables[band, i] = key
        slots[band, i] = row


@kernel
def _screen(keys, sigs, todo, start, new_t, new_s, new_sigs, new_n, old_t, old_s, old_sigs, old_n, need, near):  # pragma: no cover
    """For records start.. in order (those with todo[i]): near[i] = a near duplicate of a record in either generation
    (or of one inserted before it here); the others are inserted into the newer generation. Stops when that one is
    full; returns (next record, newer generation's count)."""
    cap = new_sigs.shape[0]
    i = start
    n = len(keys)
    while i < n:
        if todo[i]:
            if (old_n > 0 and _lookup(old_t, old_s, old_sigs, keys[i], sigs[i], need)) or (
                    new_n > 0 and _lookup(new_t, new_s, new_sigs, keys[i], sigs[i], need)):
                near[i] = True
            else:
                if new_n == cap:
                    return i, new_n
                _insert(new_t, new_s, new_sigs, new_n, keys[i], sigs[i])
                new_n += 1
        i += 1
    return i, new_n


class _Generation:
    __slots__ = ("tables", "slots", "sigs", "n")

    def __init__(self, capacity: int, bands: int, num_perm: int) -> None:
        size = 1 << max(4, int(np.ceil(np.log2(capacity / 0.6))))  # load <= 0.6
        self.tables = np.zeros((bands, size), dtype=np.uint64)
        self.slots = np.zeros((bands, size), dtype=np.int32)
        self.sigs = np.zeros((capacity, num_perm), dtype=np.uint8)
        self.n = 0

    def clear(self) -> None:
        self.tables.fill(0)
        self.n = 0

    @property
    def nbytes(self) -> int:
        return self.tables.nbytes + self.slots.nbytes + self.sigs.nbytes


class NearDupWindow:
    """The LSH index over a partition's most recent kept records (see the module docstring)."""

    def __init__(self, capacity: int, threshold: float = 0.8, num_perm: int = 128) -> None:
        if capacity < 2:
            raise ValueError(f"near-duplicate window capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self.half = capacity // 2
        self.threshold = threshold
        self.num_perm = num_perm
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.need = min_agreement(threshold, num_perm)
        self._new = _Generation(self.half, self.bands, num_perm)
        self._old = _Generation(self.half, self.bands, num_perm)

    def __len__(self) -> int:
        return self._new.n + self._old.n

    @property
    def nbytes(self) -> int:
        """Memory held (both generations)."""
        return self._new.nbytes + self._old.nbytes

    def keys(self, sigs: np.ndarray) -> np.ndarray:
        """Band keys of a batch of full signatures."""
        return band_keys(np.atleast_2d(sigs), self.bands, self.rows)

    def screen(self, keys: np.ndarray, short: np.ndarray, todo: np.ndarray) -> np.ndarray:
        """For each record with todo[i], in order: True if it is a near duplicate of a record in the window (or of
        an earlier one of this batch); the others are added to the window. Returns the near-duplicate mask."""
        near = np.zeros(len(keys), dtype=bool)
        todo = np.ascontiguousarray(todo, dtype=np.bool_)
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        short = np.ascontiguousarray(short, dtype=np.uint8)
        i = 0
        while i < len(keys):
            new, old = self._new, self._old
            i, new.n = _screen(keys, short, todo, i, new.tables, new.slots, new.sigs, new.n,
                               old.tables, old.slots, old.sigs, old.n, self.need, near)
            if i < len(keys):  # the newer generation is full: it becomes the older one
                self._rotate()
        return near

    def add(self, keys: np.ndarray, short: np.ndarray) -> None:
        """Insert kept records as they were kept (restoring the window), rotating as `screen` would."""
        for k, s in zip(np.atleast_2d(keys), np.atleast_2d(short)):
            if self._new.n == self.half:
                self._rotate()
            _insert(self._new.tables, self._new.slots, self._new.sigs, self._new.n, k, s)
            self._new.n += 1

    def _rotate(self) -> None:
        self._old, self._new = self._new, self._old
        self._new.clear()

    def restore_span(self, kept_total: int) -> int:
        """How many of the most recent kept records the window holds after `kept_total` were kept (and so which
        ones a restore re-adds): the full older generation, if any, and the newer one's records."""
        if kept_total <= self.half:
            return kept_total
        in_newer = kept_total % self.half or self.half
        return self.half + in_newer


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two short signatures (chance agreement taken out)."""
    chance = 1.0 / (1 << SIG_BITS)
    agree = float(np.mean(a == b))
    return max(0.0, (agree - chance) / (1.0 - chance))
