"""The KP validator (drop reasons), grounding, and what the extractor does with them in both modes: Chinese seeds
keep KPs of their own text, inline choices never become KPs, mixed-language batches."""

from __future__ import annotations

import pytest
from linksyn.common.ids import content_id
from linksyn.common.llm.base import LLM, Completion
from linksyn.extractor.config import ExtractorConfig
from linksyn.extractor.extractor import Extractor
from linksyn.extractor.kp_check import DROP_REASONS, KPValidator, SeedText, check_reason
from linksyn.v1.records_pb2 import Seed


def zh_seed(question: str, answer: str, subject: str = "") -> Seed:
    return Seed(id=content_id(question, answer), question=question, answer=answer, subject=subject, lang="zh")


@pytest.mark.parametrize(("kp", "reason"), [
    ("A", "choice_label"), ("(b)", "choice_label"), ("C.", "choice_label"), ("option D", "choice_label"),
    ("选项A", "choice_label"), ("a and b", "choice_label"),
    ("120", "number"), ("96", "number"), ("3.5 kg", "number"), ("96%", "number"), ("1/2", "number"), ("三", "number"),
    ("kg", "unit"), ("m/s", "unit"), ("厘米", "unit"), ("mol", "unit"),
    ("the", "stopword"), ("which of the following", "stopword"), ("下列", "stopword"), ("正确", "stopword"),
    ("x", "single_char"), ("7", "number"), ("α", "single_char"), ("的", "stopword"), ("力", None),
    ("$x^2$", "fragment"), ("\\frac", "fragment"), ("law of", "fragment"), ("of motion", "fragment"),
    ("pythagorean theorem", None), ("newton's second law", None), ("狭义相对论", None), ("c++", None),
    ("vitamin b12", None), ("world war ii", None),
])
def test_validator_drop_reasons(kp, reason):
    assert check_reason(kp) == reason
    assert reason is None or reason in DROP_REASONS


def test_chinese_fragments_are_judged_against_the_seeds_own_words():
    v = KPValidator()
    text = v.seed_text("狭义相对论基本假设是什么？第二次世界大战爆发于哪一年？", "")
    assert v.reason("论基本假", text) == "fragment" and v.reason("次世界大", text) == "fragment"
    assert v.reason("狭义相对论", text) is None and v.reason("第二次世界大战", text) is None
    assert v.reason("基本假设", text) is None
    assert v.reason("电路中", v.seed_text("电流", "")) == "fragment"  # not in the text: ends on a particle
    assert v.reason("力", text) is None and v.reason("胸", text) is None  # one-character words
    assert v.reason("狭", text) == "fragment"  # a piece of 狭义, no word on its own


def test_grounding_after_the_extractors_normalisation():
    t = SeedText("State Newton's laws of motion. Compute $\\frac{1}{2} m v^2$ and \\sqrt{2}.", "kinetic energy")
    assert t.is_grounded("Newton's law") and t.is_grounded("newton law") and t.is_grounded("Kinetic Energies")
    assert t.is_grounded("fraction") and t.is_grounded("square root")  # LaTeX commands name these concepts
    assert not t.is_grounded("ohm's law") and not t.is_grounded("law of motion kinetic")
    zh = SeedText("某⼈先向东⾛2m，他的位移是", "")  # Kangxi radicals fold to the ideographs
    assert zh.is_grounded("位移") and zh.is_grounded("某人") and not zh.is_grounded("物体")


CHINESE_SEEDS = [
    ("一物体做匀加速直线运动，在第一个时间间隔内的位移是4米，物体的加速度是多少？", "A. 2米每二次方秒", "high_school_physics"),
    ("下列关于氧化还原反应的说法正确的是\nA. 氧化剂被还原 B. 还原剂被还原 C. 氧化剂失去电子 D. 催化剂被氧化",
     "A. 氧化剂被还原", "high_school_chemistry"),
    ("第二次世界大战爆发于哪一年？", "1939年，德国入侵波兰。", "world_history"),
    ("狭义相对论的两个基本假设是什么？", "相对性原理和光速不变原理。", "high_school_physics"),
    ("秦始皇统一六国后推行了哪些制度？", "郡县制，统一文字、货币和度量衡。", "chinese_history"),
    ("细胞有丝分裂过程中染色体数目加倍发生在哪个时期？", "后期，着丝点分裂。", "high_school_biology"),
]


@pytest.fixture(scope="module")
def keyphrase_extractor(embedder):
    return Extractor.from_config(ExtractorConfig(mode="keyphrase", keyphrase_tokens="static"), embedder=embedder)


def test_a_chinese_seed_never_receives_a_kp_from_another_seed(keyphrase_extractor):
    seeds = [zh_seed(q, a, s) for q, a, s in CHINESE_SEEDS]
    # In order and then again in reverse, so every seed comes after seeds of other subjects with KPs known.
    for batch in (seeds, seeds[::-1], seeds[:1] + seeds[2:] + seeds[1:2]):
        outs = keyphrase_extractor.extract(batch)
        for seed, o in zip(batch, outs):
            assert o.annotation is not None, o.error
            text = SeedText(seed.question, seed.answer)
            assert all(text.is_grounded(kp) for kp in o.annotation.kps), (seed.question, o.annotation.kps)
            assert all(text.is_whole_words(kp) is not False for kp in o.annotation.kps), o.annotation.kps
    # MiniLM reads no Chinese: Chinese KPs merged by canonical form only (the English merger never saw them).
    assert keyphrase_extractor.canon.merged_by_script.get("zh", 0) == 0
    by_q = {s.question[:6]: o.annotation for s, o in zip(seeds, keyphrase_extractor.extract(seeds))}
    assert "物体" not in by_q["下列关于氧化"].kps and "时间间隔" not in by_q["第二次世界大"].kps


INLINE_CHOICES = Seed(
    id="inline", question="Which gas do plants absorb for photosynthesis? (A) oxygen (B) carbon dioxide (C) nitrogen "
    "(D) helium", answer="B", subject="high_school_biology", lang="en")
INLINE_CHOICES_ZH = zh_seed("植物进行光合作用时吸收哪种气体？（A）氧气（B）二氧化碳（C）氮气（D）氦气", "B", "high_school_biology")


def test_inline_choices_never_become_kps_keyphrase(keyphrase_extractor):
    for seed in (INLINE_CHOICES, INLINE_CHOICES_ZH):
        [o] = keyphrase_extractor.extract([seed])
        assert o.annotation is not None, o.error
        assert not any(check_reason(kp) for kp in o.annotation.kps), o.annotation.kps
        assert not {"a", "b", "c", "d"} & {kp.lower() for kp in o.annotation.kps}


class ScriptedLLM(LLM):
    """A stand-in engine for a unit test of the extractor's handling of replies (no model); an LLM, so the
    annotator's `submit` runs `generate`."""

    model_name = "scripted"

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies = replies

    def generate(self, requests):
        return [Completion(text=self.replies[i % len(self.replies)], prompt_tokens=10, completion_tokens=5)
                for i in range(len(requests))]


def test_llm_choice_letters_and_numbers_are_dropped_and_counted():
    reply = ('{"knowledge_points": ["A", "b", "(C)", "d", "120", "96", "photosynthesis", "carbon dioxide", "x", '
             '"ohm\'s law"], "discipline": "biology", "subdiscipline": "general biology", "difficulty": 2}')
    ex = Extractor.from_config(ExtractorConfig(mode="llm", kp_merge=False), llm=ScriptedLLM([reply]))
    [o] = ex.extract([INLINE_CHOICES])
    assert o.annotation is not None
    assert o.annotation.kps == ["photosynthesis", "carbon dioxide", "ohm's law"]
    assert o.kp_drops == {"choice_label": 4, "number": 2, "single_char": 1}
    assert o.ungrounded == 1  # "ohm's law" is not in the seed: kept (the default policy), counted
    assert ex.totals["kps_dropped_choice_label"] == 4 and ex.totals["kps_ungrounded"] == 1
    assert ex.totals["kps_kept"] == 3


def test_llm_ungrounded_kps_dropped_when_configured_and_all_junk_fails_retryably():
    reply = '{"knowledge_points": ["photosynthesis", "ohm\'s law"], "discipline": "biology", "subdiscipline": "general biology", "difficulty": 2}'
    ex = Extractor.from_config(ExtractorConfig(mode="llm", kp_merge=False, llm_ungrounded_kps="drop"),
                               llm=ScriptedLLM([reply]))
    [o] = ex.extract([INLINE_CHOICES])
    assert o.annotation.kps == ["photosynthesis"] and o.kp_drops == {"ungrounded": 1}
    junk = '{"knowledge_points": ["A", "B", "12"], "discipline": "biology", "subdiscipline": "general biology", "difficulty": 2}'
    ex = Extractor.from_config(ExtractorConfig(mode="llm", kp_merge=False), llm=ScriptedLLM([junk]))  # type: ignore[arg-type]
    [o] = ex.extract([INLINE_CHOICES])
    assert o.annotation is None and o.retryable and o.cause == "reply"
    assert "'A' (choice_label)" in o.error and "'12' (number)" in o.error


def test_mixed_language_batch(keyphrase_extractor):
    seeds = [
        Seed(id="en1", question="State Newton's second law of motion.", answer="F = ma: force equals mass times "
             "acceleration.", lang="en"),
        zh_seed(*CHINESE_SEEDS[0][:2]),
        Seed(id="mix", question="DNA复制发生在细胞周期的哪个时期？What enzyme unwinds DNA?", answer="S期；解旋酶 (helicase)",
             lang="zh"),
        Seed(id="tex", question="Evaluate $\\int_0^1 x^2 \\, dx$.", answer="$\\frac{1}{3}$", subject="calculus", lang="en"),
        zh_seed(*CHINESE_SEEDS[1][:2]),
    ]
    batch = keyphrase_extractor.extract(seeds)
    one_by_one = [keyphrase_extractor.extract([s])[0] for s in seeds]
    for seed, o, single in zip(seeds, batch, one_by_one):
        assert o.annotation is not None, o.error
        assert o.annotation.kps == single.annotation.kps  # a seed's KPs do not depend on its batch
        text = SeedText(seed.question, seed.answer)
        assert all(text.is_grounded(kp) for kp in o.annotation.kps), (seed.id, o.annotation.kps)
    en, zh, mix, tex, zh2 = (o.annotation for o in batch)
    assert any("newton" in kp or "law" in kp for kp in en.kps) and en.discipline == "physics"
    assert zh.discipline == "physics" and zh2.discipline == "chemistry"  # the keyword lexicon, not MiniLM
    assert any(kp in ("dna复制", "细胞周期", "解旋酶") for kp in mix.kps), mix.kps
    assert "integral" in tex.kps
