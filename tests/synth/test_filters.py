from linksyn.common.text import detect_lang, ngram_overlap
from linksyn.synth.filters import (
    check_language,
    check_lengths,
    check_seed_copy,
    first_failed_filter,
)
from linksyn.synth.config import SynthConfig
from linksyn.synth.parse import GeneratedQA

S = SynthConfig(min_question_chars=15, max_question_chars=200, max_answer_chars=50, copy_ngram=5,
                max_copy_overlap=0.6)
SEED = "A box holds 12 eggs. How many eggs are in 5 boxes of the same size?"


def qa(q="How many wheels do 7 bicycles have in total?", a="14"):
    return GeneratedQA(question=q, answer=a)


def test_lengths_and_answer_presence():
    assert check_lengths(qa(), S) is None
    assert check_lengths(qa(a="..."), S) == "answer_missing"
    assert check_lengths(qa(a="  "), S) == "answer_missing"
    assert check_lengths(qa(q="Why?"), S) == "question_too_short"
    assert check_lengths(qa(q="x" * 201), S) == "question_too_long"
    assert check_lengths(qa(a="y" * 51), S) == "answer_too_long"


def test_language_by_script():
    assert detect_lang("牛顿第二定律的表达式是什么？") == "zh"
    assert detect_lang("What is Newton's second law?") == "en"
    assert detect_lang("1 + 1 = ?") == ""
    assert check_language(qa(), "en", S) is None
    assert check_language(qa(q="牛顿第二定律的表达式是什么？请写出公式。"), "en", S) == "wrong_language"
    assert check_language(qa(), "zh", S) == "wrong_language"
    assert check_language(qa(), "", S) is None


def test_verbatim_seed_copy():
    assert ngram_overlap(SEED, SEED, 5) == 1.0
    assert check_seed_copy(qa(q=SEED), [SEED], S) == "seed_copy"
    near = "A box holds 12 eggs. How many eggs are in 5 boxes of the same size? Answer quickly."
    assert check_seed_copy(qa(q=near), [SEED], S) == "seed_copy"
    assert check_seed_copy(qa(), [SEED], S) is None
    # Shared topic words alone are not a copy.
    assert check_seed_copy(qa(q="If 12 eggs fill a carton, how many cartons do 60 eggs fill?"), [SEED], S) is None


def test_first_failed_filter_order():
    assert first_failed_filter(qa(q=SEED, a=""), "en", [SEED], S) == "answer_missing"
    assert first_failed_filter(qa(q=SEED), "en", [SEED], S) == "seed_copy"
    assert first_failed_filter(qa(), "en", [SEED], S) is None
