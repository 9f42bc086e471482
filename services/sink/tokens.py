"""Word hashes of many texts in one compiled pass: the sink's bulk form of `linksyn.common.text.word_tokens`.

`word_tokens` is the definition (a regex over `fold_text(text)`); at tens of thousands of records a second its
per-word Python objects cost more than everything else the sink does, so here the folded texts of a batch are joined
into one UTF-8 buffer and a numba kernel walks it once: it decodes each code point, classes it with a table built from
the same rules (str.isalnum, the CJK ranges of linksyn.common.text) and hashes each word's UTF-8 bytes (FNV-1a, then
murmur3's finaliser). tests/sink/test_sink_tokens.py checks that the words found are `word_tokens`'s, also on
Chinese, accents, digits, underscores and symbols.

Hashes are stable across processes and versions of Python (persisted state relies on it).
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Sequence

import numpy as np
from linksyn.common.compiled import inline, kernel
from linksyn.common.text import CJK_RANGES, fold_text

SEPARATOR, WORD, SINGLE = 0, 1, 2
"""Code point classes: not part of a word; a letter or digit (str.isalnum); a CJK character (a word of its own when
it starts one)."""

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@functools.cache
def code_point_classes() -> np.ndarray:
    """uint8 class of every code point (SEPARATOR, WORD, SINGLE), built once per process (~0.2 s)."""
    table = np.zeros(sys.maxunicode + 1, dtype=np.uint8)
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    alnum = [ord(m.group()) for m in re.finditer(r"[^\W_]", every)]  # the regex's own notion: str.isalnum
    table[np.asarray(alnum, dtype=np.int64)] = WORD
    for a, b in CJK_RANGES:
        table[a : b + 1] = SINGLE
    return table


@inline
def _finish(h: np.uint64) -> np.uint64:
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@kernel
def _scan(buf, starts, classes, out_hash, out_owner, out_start, out_len):  # pragma: no cover - compiled
    """Words of texts buf[starts[t]:starts[t+1]] (valid UTF-8): their hash, text, byte offset and byte length.
    Returns the number of words."""
    k = 0
    for t in range(len(starts) - 1):
        p = starts[t]
        end = starts[t + 1]
        in_word = False
        h = _FNV_OFFSET
        first = 0
        while p < end:
            b0 = buf[p]
            if b0 < 0x80:
                n = 1
                cls = classes[b0]
            else:
                if b0 < 0xE0:
                    cp = ((np.int64(b0) & 0x1F) << 6) | (np.int64(buf[p + 1]) & 0x3F)
                    n = 2
                elif b0 < 0xF0:
                    cp = ((np.int64(b0) & 0x0F) << 12) | ((np.int64(buf[p + 1]) & 0x3F) << 6) | (np.int64(buf[p + 2]) & 0x3F)
                    n = 3
                else:
                    cp = (((np.int64(b0) & 0x07) << 18) | ((np.int64(buf[p + 1]) & 0x3F) << 12)
                          | ((np.int64(buf[p + 2]) & 0x3F) << 6) | (np.int64(buf[p + 3]) & 0x3F))
                    n = 4
                cls = classes[cp]
            if cls == 0:
                if in_word:
                    out_hash[k] = _finish(h)
                    out_owner[k] = t
                    out_start[k] = first
                    out_len[k] = p - first
                    k += 1
                    in_word = False
            else:
                if not in_word:
                    h = _FNV_OFFSET
                    first = p
                for j in range(n):
                    h = (h ^ np.uint64(buf[p + j])) * _FNV_PRIME
                if in_word:
                    pass
                elif cls == 2:  # a CJK character starting a word is a word alone
                    out_hash[k] = _finish(h)
                    out_owner[k] = t
                    out_start[k] = first
                    out_len[k] = n
                    k += 1
                else:
                    in_word = True
            p += n
        if in_word:
            out_hash[k] = _finish(h)
            out_owner[k] = t
            out_start[k] = first
            out_len[k] = p - first
            k += 1
    return k


class Words:
    """The words of a batch of texts: `hashes[i]` is word i's hash, `owners[i]` its text's index; words are in text
    order. `starts`/`lengths` locate each word in `buf` (the folded texts' joined UTF-8), for tests and debugging."""

    __slots__ = ("hashes", "owners", "starts", "lengths", "buf")

    def __init__(self, hashes: np.ndarray, owners: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                 buf: bytes) -> None:
        self.hashes = hashes
        self.owners = owners
        self.starts = starts
        self.lengths = lengths
        self.buf = buf

    def text(self, i: int) -> str:
        s = int(self.starts[i])
        return self.buf[s : s + int(self.lengths[i])].decode("utf-8")


def folded_words(folded: Sequence[str]) -> Words:
    """Words of texts already passed through `fold_text` (the sink folds each question once for its hash too)."""
    encoded = [t.encode("utf-8") for t in folded]
    ends = np.cumsum(np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded)))
    starts = np.concatenate([np.zeros(1, np.int64), ends])
    joined = b"".join(encoded)
    buf = np.frombuffer(joined, dtype=np.uint8)
    cap = len(buf) + 1  # at most one word per byte
    out = (np.empty(cap, np.uint64), np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64))
    k = _scan(buf, starts, code_point_classes(), *out)
    return Words(out[0][:k], out[1][:k], out[2][:k], out[3][:k], joined)


def text_words(texts: Sequence[str]) -> Words:
    """Words of raw texts (folded here)."""
    return folded_words([fold_text(t) for t in texts])


def warm_up() -> None:
    """Build the class table and compile (or load from numba's cache) the kernel before the first batch."""
    text_words(["warm up 中文"])
