"""Text normalisation, word tokens and script-based language detection, shared by the extractor, synth filters and
the sink.

Pure functions, no dependencies beyond the standard library: CJK characters count as one word each (Chinese has no
spaces), Latin/digit runs as words.
"""

from __future__ import annotations

import re
import unicodedata

CJK_RANGES: tuple[tuple[int, int], ...] = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
"""Code points (inclusive ranges) that are words of one character: CJK ideographs."""
_CJK_CLASS = "[" + "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in CJK_RANGES) + "]"
_WORDS = re.compile(_CJK_CLASS + r"|[^\W_]+", re.UNICODE)
_CJK = re.compile(_CJK_CLASS)
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def fold_text(text: str) -> str:
    """NFKC, then lower case: the form both `normalise_text` and `word_tokens` start from."""
    return unicodedata.normalize("NFKC", text).lower()


def _compat_fold_table() -> dict[int, str]:
    table = {}
    ranges = (range(0x2E80, 0x2FE0), range(0xF900, 0xFB00), range(0xFF01, 0xFF5F), (0x3000,))
    for cp in (c for r in ranges for c in r):
        folded = unicodedata.normalize("NFKC", chr(cp))
        if folded != chr(cp) and len(folded) == 1:
            table[cp] = folded
    return table


_COMPAT_FOLD = _compat_fold_table()


def fold_compat(text: str) -> str:
    """NFKC of the characters whose NFKC is one character, in the CJK radical, CJK compatibility and full-width
    blocks (Kangxi radical '⼈' -> '人', '，' -> ',', 'Ａ' -> 'A', ideographic space -> ' '); every other character
    unchanged. The length is kept, so character offsets into the folded text are offsets into the original.
    (CMMLU writes many common characters as Kangxi radicals: unfolded they split words and miss dictionaries.)"""
    return text.translate(_COMPAT_FOLD)


def kp_script(text: str) -> str:
    """The script class of a knowledge point, which decides what it may merge with: 'zh' if it holds a CJK
    character, else 'en' if it holds a Latin letter, else '' (digits, symbols, other scripts)."""
    if _CJK.search(text):
        return "zh"
    return "en" if _LATIN.search(text) else ""


def normalise_text(text: str) -> str:
    """NFKC, lower case, whitespace collapsed, trimmed: the form ids and exact-duplicate hashes are taken of."""
    return collapse_whitespace(fold_text(text))


def collapse_whitespace(folded: str) -> str:
    """Runs of whitespace as one space, trimmed (str.split's whitespace is the regex `\\s`'s; a join is 10x faster)."""
    return " ".join(folded.split())


def word_tokens(text: str) -> list[str]:
    """Lower-cased words (CJK characters one each, punctuation dropped).

    Precisely: the matches of `[CJK]|[^\\W_]+` in `fold_text(text)`, left to right: a CJK character that starts a word
    is a word of its own, and a run of letters and digits (str.isalnum) is a word, CJK characters inside it included
    (linksyn.sink.tokens is a compiled equivalent for bulk work, tested against this)."""
    return _WORDS.findall(fold_text(text))


def cjk_share(text: str) -> float:
    """CJK characters / (CJK + Latin letters); 0 for text with neither."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    return cjk / (cjk + latin) if cjk + latin else 0.0


def detect_lang(text: str, zh_min_cjk_share: float = 0.3) -> str:
    """'zh' if CJK is at least `zh_min_cjk_share` of the letters, 'en' if there are Latin letters, '' if neither."""
    share = cjk_share(text)
    if share >= zh_min_cjk_share and share > 0:
        return "zh"
    return "en" if _LATIN.search(text) else ""


def ngram_set(words: list[str], n: int) -> set[tuple[str, ...]]:
    """The word n-grams of `words`; a text shorter than n is one gram (so short texts still compare)."""
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def ngram_overlap(text: str, reference: str, n: int) -> float:
    """Share of `text`'s word n-grams that occur in `reference` (0..1)."""
    words = word_tokens(text)
    ref = word_tokens(reference)
    n_eff = max(1, min(n, len(words), len(ref))) if words and ref else n
    grams = ngram_set(words, n_eff)
    if not grams:
        return 0.0
    return len(grams & ngram_set(ref, n_eff)) / len(grams)
