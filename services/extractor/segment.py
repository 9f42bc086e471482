"""Chinese word segmentation for knowledge points: jieba, with the dictionary, part-of-speech tags and IDF table
that ship inside its PyPI package (nothing is downloaded at run time).

`ChineseSegmenter.words(text)` cuts the CJK runs of a text into dictionary words (jieba's maximum-probability
path over its prefix dictionary, HMM off: every word it returns is a dictionary word or a single character), with
each word's character span in the text, its part of speech and its IDF. Knowledge-point candidates are built from
whole words only (`linksyn.extractor.keyphrase`), and the KP validator uses the same cut to tell a whole word from
a fragment ("论基本假" is not one in "狭义相对论基本假设").

Cost: the first use in a process loads jieba's 350k-word dictionary (jieba builds its prefix dictionary, about 1.5 s
on one core, then caches it as a marshal file in the temp directory when that is writable; reloading from the cache
takes about 0.5 s) plus the POS tags and the IDF table (about 0.5 s). `shared_segmenter()` keeps one instance per
process; cutting is then roughly 0.5-1 MB of text per second per core. Thread-safe after loading (jieba's cut only
reads its tables).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from linksyn.common.text import fold_compat

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

CONTENT_TAGS = frozenset({"n", "nr", "nrfg", "nrt", "ns", "nt", "nz", "ng", "vn", "an", "v", "vd", "a", "ad", "i", "j",
                          "l", "g", "s", "b", "eng"})
"""jieba part-of-speech tags a knowledge-point word may carry (nouns, verbs and verbal nouns, adjectives, idioms,
abbreviations, distinguishing words); function words (pronouns r, adverbs d, prepositions p, conjunctions c,
particles u, numerals m, measure words q, localisers f, time words t, modal y, interjections e) never are. Set
phrases (l) are both terms (相对论) and prepositional phrases (在实践中): `is_content_word` tells them apart."""
NOUN_TAGS = frozenset({"n", "nr", "nrfg", "nrt", "ns", "nt", "nz", "ng", "vn", "an", "l", "j"})
"""Tags that may end a compound candidate (a modifier + a noun: 额定 + 功率 -> 额定功率)."""

STOP_WORDS = frozenset("""
下列 以下 关于 什么 哪个 哪些 哪项 哪一 正确 错误 说法 其中 一个 可以 不是 没有 因为 所以 如果 那么 我们 他们 这个 那个
选项 属于 包括 叙述 表述 描述 下面 应该 能够 不能 主要 如下 答案 问题 为了 通过 不同 一种 以上 符合 不符合 不属于 认为 是否
已知 求出 计算 判断 选择 分别 可能 需要 进行 使用 利用 得到 成为 具有 存在 发生 出现 表示 称为 叫做 就是 还是 或者 而且
并且 但是 然而 由于 因此 对于 根据 按照 其他 其它 有关 相关 相同 一定 一般 不会 不要 这种 那种 这些 那些 此时 同时 最后
首先 然后 一些 有的 每个 各种 所有 全部 部分 一样 比较 非常 特别 作为 包含 含有 有些 以及 如何 怎样 怎么 为何 是因为
不正确 不对 对的 错的 恰当 不恰当 准确 不准确 合理 不合理 说明 体现 反映 这是 那是 其实 确定 给出 题目 本题 该题 上述
""".split())
"""Multi-character function words and exam phrasing that jieba tags as content ("下列", "正确", "说法"...)."""


PREPOSITION_STARTS = frozenset("在对从按由被把向")
"""A word of three or more characters starting with one of these is a prepositional phrase the dictionary happens
to list ("在实践中", "按规定"), not a concept."""


def is_content_word(word: "Word") -> bool:
    """Whether a word may be (part of) a Chinese knowledge point: two characters or more, not a function word or
    exam phrasing, a content part of speech (or untagged and three characters or more), not a prepositional
    phrase."""
    text = word.text
    if len(text) < 2 or text in STOP_WORDS:
        return False
    if len(text) >= 3 and text[0] in PREPOSITION_STARTS:
        return False
    return word.tag in CONTENT_TAGS or (not word.tag and len(text) >= 3)


@dataclass(frozen=True)
class Word:
    """One word of a segmented text."""

    text: str
    start: int
    end: int
    tag: str
    """jieba's part-of-speech tag of the word ('' when the dictionary has none)."""


def _jieba_dir() -> Path:
    import jieba

    return Path(jieba.__file__).parent


class ChineseSegmenter:
    """jieba's tokenizer with its POS tags and IDF table; see the module doc for cost."""

    def __init__(self) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)  # its loader logs at DEBUG to stderr by default
        self._tok = jieba.Tokenizer()
        self._tok.initialize()
        root = _jieba_dir()
        self.tags: dict[str, str] = {}
        with (root / "dict.txt").open(encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 3:
                    self.tags[parts[0]] = parts[2]
        self.idf: dict[str, float] = {}
        with (root / "analyse" / "idf.txt").open(encoding="utf-8") as fh:
            for line in fh:
                word, _, value = line.rstrip("\n").rpartition(" ")
                if word:
                    self.idf[word] = float(value)
        values = sorted(self.idf.values())
        self.median_idf = values[len(values) // 2] if values else 10.0
        """IDF given to words the table lacks (jieba.analyse does the same)."""

    def words(self, text: str) -> list[Word]:
        """Every word of the CJK runs of `text` (folded with fold_compat first, so offsets are `text`'s)."""
        folded = fold_compat(text)
        out: list[Word] = []
        for run in _CJK_RUN.finditer(folded):
            pos = run.start()
            for w in self._tok.cut(run.group(0), HMM=False):
                out.append(Word(w, pos, pos + len(w), self.tags.get(w, "")))
                pos += len(w)
        return out

    def cut(self, text: str) -> list[str]:
        """The words of `text` alone (CJK runs only)."""
        return [w.text for w in self.words(text)]

    def is_word(self, text: str) -> bool:
        """`text` is one dictionary word."""
        return text in self._tok.FREQ and self._tok.FREQ[text] > 0

    def boundaries(self, text: str) -> set[int]:
        """Character offsets of `text` where a word starts or ends, plus the ends of every CJK run (a non-CJK
        character is a boundary of its own)."""
        cuts: set[int] = set()
        for w in self.words(text):
            cuts.add(w.start)
            cuts.add(w.end)
        return cuts

    def idf_of(self, word: str) -> float:
        return self.idf.get(word, self.median_idf)


_shared: ChineseSegmenter | None = None
_shared_lock = threading.Lock()


def shared_segmenter() -> ChineseSegmenter:
    """The process-wide segmenter, loaded on first use (see the module doc for the cost)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ChineseSegmenter()
        return _shared
