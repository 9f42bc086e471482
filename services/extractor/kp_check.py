"""The knowledge-point validator both annotators' KPs go through, and the grounding check.

`KPValidator.check(kps, text)` keeps the KPs that name something and drops the rest, each with one reason
(`DROP_REASONS`, counted in the report and in `linksyn_extractor_kps_dropped_total{reason}`):

- choice_label: an option label or letter ("A", "(b)", "option C", "选项D", "a and b"): on multiple-choice
  seeds these would become hub nodes linking every question to every other;
- number: a bare number, or a number with units ("120", "3.5 kg", "96%");
- unit: a unit alone ("kg", "m/s", "厘米");
- stopword: only function words or exam phrasing ("the", "which", "下列", "正确");
- single_char: one Latin letter, digit or symbol (a variable name "x"); a one-character Chinese word is kept when
  jieba's dictionary gives it a content part of speech (力, 酶, 胸), a fragment otherwise;
- fragment: part of a word or of a phrase: markup ("$x^2$", "\\frac"), an English phrase that starts or ends with a
  function word ("law of"), a Chinese KP whose occurrences in the seed cut a word (its ends are not on the word
  boundaries of jieba's segmentation of the seed: "论基本假" in "狭义相对论基本假设"), or, when it does not occur in
  the seed, one that starts or ends with a particle or preposition ("电路中");
- ungrounded: (only when the policy says drop) not found in the seed's own text, see `is_grounded`.

Grounding (`SeedText.is_grounded`): a KP is grounded when its canonical form (linksyn.common.kp_form, possessive 's
dropped) occurs in the canonical form of the seed's question + answer as whole words (English), as a substring
(Chinese: the folded text), or names a math concept one of the seed's LaTeX commands stands for (`\\frac` ->
"fraction"). The keyphrase extractor only proposes grounded KPs; an LLM may name a concept the text implies
("ohm's law" for a question about current and voltage): `extractor.llm_ungrounded_kps` says whether those are kept
(the default, counted) or dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from linksyn.common.kp_form import canonical_form
from linksyn.common.text import fold_compat, kp_script
from linksyn.extractor.segment import STOP_WORDS as ZH_STOP_WORDS
from linksyn.extractor.segment import CONTENT_TAGS, ChineseSegmenter, shared_segmenter

DROP_REASONS = ("choice_label", "number", "unit", "stopword", "single_char", "fragment", "ungrounded")
"""Why a KP was dropped (the `reason` label of the drop counters)."""

_CHOICE = re.compile(r"^(?:(?:option|choice|answer|选项|答案)\s*)?[a-f]$")
_CHOICE_TOKEN = re.compile(r"^[a-f]$")
_NUMBER_TOKEN = re.compile(r"^[+\-]?(?:\d+(?:[.,:/]\d+)*|\d*\.\d+)(?:%|st|nd|rd|th|s)?$")
_CJK_NUMERAL = re.compile(r"^[零一二三四五六七八九十百千万亿两]+$")
_MARKUP = re.compile(r"[\\$^_{}]")
_ZH_EDGE_FUNCTION = frozenset("的了是在和与或及之其这那被把从向对为以于由就则又还即所等个些中吗呢吧啊也都而")
_EN_FUNCTION = frozenset(
    "a an the of to in on at by for from with and or as is are was were be that which this these those its it their "
    "than then into onto about".split())
_EN_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below between
    both but by can cannot could did do does doing down during each either else etc ever every few for from further
    had has have having he her here hers him his how however i if in into is it its itself just least less let like
    many may me might more most much must my neither no nor not now of off often on once one only or other others
    otherwise our ours out over own per quite rather same several shall she should since so some such than that the
    their theirs them themselves then there therefore these they this those though through thus to too two under
    until up upon us use used using very via was we were what when where whether which while who whom whose why will
    with within without would yet you your first second third following statement true false correct incorrect best
    answer question choice option given find value number which none both all""".split())
UNITS = frozenset(
    """kg g mg µg ug t lb lbs oz m cm mm km µm um nm ft in inch inches mi mile miles yd s sec ms µs min h hr hrs
    hour hours hz khz mhz ghz n kn j kj mj cal kcal ev kev mev w kw mw kwh v mv kv a ma ohm ohms ω kω pa kpa mpa atm
    bar mmhg mol mmol l ml dl k °c °f c f db rad sr lm lx t gauss mph kph km/h m/s m/s2 m/s^2 rpm psi byte bytes kb
    mb gb tb bit bits""".split()
    + "千克 公斤 克 毫克 吨 米 厘米 毫米 千米 公里 微米 纳米 秒 毫秒 分钟 小时 焦耳 千焦 瓦特 千瓦 伏特 毫安 帕斯卡 千帕 摩尔 "
      "毫升 升 平方米 平方厘米 平方千米 立方米 立方厘米 赫兹 千赫 元 角 分 厘 亩 公顷 度 摄氏度".split()
)
"""Units that are never a knowledge point on their own (unambiguous ones only: not 'newton', 'ampere')."""


def check_reason(kp: str) -> str | None:
    """The drop reason of a KP judged by itself (not against a seed), or None."""
    if _MARKUP.search(kp):
        return "fragment"
    form = canonical_form(kp)
    if not form:
        return "fragment"
    tokens = form.split()
    if _CHOICE.match(form) or (len(tokens) > 1 and all(_CHOICE_TOKEN.match(t) or t in ("and", "or", "和", "或")
                                                       for t in tokens)):
        return "choice_label"
    if all(_NUMBER_TOKEN.match(t) or _CJK_NUMERAL.match(t) for t in tokens):
        return "number"
    if any(_NUMBER_TOKEN.match(t) for t in tokens) and all(_NUMBER_TOKEN.match(t) or t in UNITS for t in tokens):
        return "number"
    if form in UNITS or all(t in UNITS for t in tokens):
        return "unit"
    if len(form.replace(" ", "")) == 1 and kp_script(form) != "zh":
        return "single_char"
    if kp_script(form) == "zh":
        if form in ZH_STOP_WORDS or all(ch in _ZH_EDGE_FUNCTION for ch in form):
            return "stopword"
        return None
    if all(t in _EN_STOPWORDS for t in tokens):
        return "stopword"
    if tokens[0] in _EN_FUNCTION or tokens[-1] in _EN_FUNCTION or form.startswith("-") or form.endswith("-"):
        return "fragment"
    return None


_POSSESSIVE = re.compile(r"'s?\b")
_SCRIPT_EDGE = re.compile(r"(?<=[a-z0-9])(?=[\u3400-\u9fff])|(?<=[\u3400-\u9fff])(?=[a-z0-9])")


def ground_form(text: str) -> str:
    """The form grounding compares in: the canonical form, possessive 's dropped (the keyphrase candidates drop
    it: "newton's law" -> "newton law"), hyphens as spaces ("x-axis" holds "axis"), and a space where Latin meets
    Chinese ("sql杀手" holds "sql")."""
    form = _POSSESSIVE.sub("", canonical_form(text)).replace("-", " ")
    return " ".join(_SCRIPT_EDGE.sub(" ", form).split())


@dataclass
class SeedText:
    """A seed's question + answer in the forms grounding and the word-boundary check need (computed lazily)."""

    question: str
    answer: str
    segmenter: ChineseSegmenter | None = None

    @cached_property
    def raw(self) -> str:
        return fold_compat(f"{self.question.strip()}\n{self.answer.strip()}")

    @cached_property
    def canon(self) -> str:
        """' ' + ground form of the text + ' ' (so ' kp ' finds whole words)."""
        return f" {ground_form(self.raw)} "

    @cached_property
    def concepts(self) -> set[str]:
        """Math concepts the text's LaTeX commands name (keyphrase.MATH_CONCEPTS)."""
        from linksyn.extractor.keyphrase import MATH_CONCEPTS

        found = {MATH_CONCEPTS[m.group(1)] for m in re.finditer(r"\\([A-Za-z]+)", self.raw) if m.group(1) in MATH_CONCEPTS}
        if re.search(r"\\%|(?<=\d)%", self.raw):
            found.add("percent")
        return found

    @cached_property
    def _lower(self) -> str:
        return self.raw.lower()

    @cached_property
    def boundaries(self) -> set[int]:
        """Word boundaries of the text (jieba's cut of its CJK runs; every non-CJK character is its own)."""
        seg = self.segmenter or shared_segmenter()
        cuts = seg.boundaries(self._lower)
        # Offsets next to a non-CJK character (or the text's ends) are boundaries too.
        for i, ch in enumerate(self._lower):
            if not ("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"):
                cuts.add(i)
                cuts.add(i + 1)
        cuts.add(0)
        cuts.add(len(self._lower))
        return cuts

    def is_grounded(self, kp: str) -> bool:
        form = ground_form(kp)
        if not form:
            return False
        if kp_script(form) == "zh":
            return form.replace(" ", "") in self.canon.replace(" ", "") or fold_compat(kp).lower() in self._lower
        return f" {form} " in self.canon or canonical_form(kp) in self.concepts

    def occurrences(self, kp: str) -> list[int]:
        """Start offsets of `kp` (folded, lower case) in the text."""
        needle = fold_compat(kp).lower().strip()
        out, i = [], self._lower.find(needle) if needle else -1
        while i >= 0:
            out.append(i)
            i = self._lower.find(needle, i + 1)
        return out

    def is_whole_words(self, kp: str) -> bool | None:
        """For a Chinese KP found in the text: whether some occurrence starts and ends on word boundaries; None
        when the KP is not Chinese or does not occur."""
        if kp_script(kp) != "zh":
            return None
        starts = self.occurrences(kp)
        if not starts:
            return None
        n = len(fold_compat(kp).strip())
        cuts = self.boundaries
        return any(s in cuts and s + n in cuts for s in starts)


@dataclass
class CheckedKPs:
    """What the validator kept and dropped of one seed's KPs."""

    kept: list[str]
    dropped: list[tuple[str, str]]
    """(kp, reason) per dropped KP."""
    ungrounded: int = 0
    """Kept KPs not found in the seed's text (LLM mode with the 'keep' policy)."""


class KPValidator:
    """Drops junk KPs with a reason (see the module doc). `drop_ungrounded`: also drop KPs not in the seed's text;
    `count_ungrounded`: count the kept ones that are not (the LLM annotator's; the keyphrase extractor's KPs come
    from the text, so it skips the check)."""

    def __init__(self, drop_ungrounded: bool = False, count_ungrounded: bool = True,
                 segmenter: ChineseSegmenter | None = None) -> None:
        self.drop_ungrounded = drop_ungrounded
        self.count_ungrounded = count_ungrounded
        self.segmenter = segmenter

    def seed_text(self, question: str, answer: str) -> SeedText:
        return SeedText(question, answer, self.segmenter)

    def reason(self, kp: str, text: SeedText) -> str | None:
        """Why `kp` is dropped for this seed, or None to keep it."""
        why = check_reason(kp)
        if why:
            return why
        if kp_script(kp) == "zh":
            core = fold_compat(canonical_form(kp)).replace(" ", "")
            whole = text.is_whole_words(kp)
            if whole is False:
                return "fragment"
            if len(core) == 1:  # a one-character word (力, 酶, 胸) is a KP; a lone particle or a piece is not
                seg = self.segmenter or shared_segmenter()
                return None if seg.tags.get(core, "") in CONTENT_TAGS else "fragment"
            if whole is None:
                if core and (core[0] in _ZH_EDGE_FUNCTION or core[-1] in _ZH_EDGE_FUNCTION):
                    return "fragment"
        if self.drop_ungrounded and not text.is_grounded(kp):
            return "ungrounded"
        return None

    def check(self, kps: list[str], text: SeedText) -> CheckedKPs:
        kept: list[str] = []
        dropped: list[tuple[str, str]] = []
        ungrounded = 0
        for kp in kps:
            why = self.reason(kp, text)
            if why:
                dropped.append((kp, why))
                continue
            kept.append(kp)
            if self.count_ungrounded and not self.drop_ungrounded and not text.is_grounded(kp):
                ungrounded += 1
        return CheckedKPs(kept, dropped, ungrounded)


def drop_counts(checked: list[CheckedKPs]) -> Counter:
    """Drops by reason over many seeds."""
    return Counter(reason for c in checked for _, reason in c.dropped)
