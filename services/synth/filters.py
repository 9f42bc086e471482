"""Quality filters on a generated QA (pure). Each returns a drop reason, or None when the item passes; the
thresholds are SynthConfig's (min/max question chars, max answer chars, zh_min_cjk_share, copy_ngram,
max_copy_overlap).

Reasons are stable strings: they label the `linksyn_synth_dropped_total` metric and the dataset card.
"""

from __future__ import annotations

from typing import Sequence

from linksyn.common.text import detect_lang, ngram_overlap
from linksyn.synth.config import SynthConfig
from linksyn.synth.parse import GeneratedQA

# Every reason an item can be dropped for, in synth (the sink adds its own).
DROP_REASONS = (
    "malformed",          # reply is not a JSON object of the schema
    "answer_missing",     # the answer is empty or a placeholder
    "question_too_short",
    "question_too_long",
    "answer_too_long",
    "wrong_language",
    "seed_copy",          # the question copies a seed verbatim (n-gram overlap)
    "rating_malformed",   # hard mode: the re-annotation reply is unusable
    "not_harder",         # hard mode: re-annotated difficulty did not rise
    "refine_malformed",   # the refiner's reply is unusable
    "refine_disagree",    # checkable answers of generator and refiner differ
)

_PLACEHOLDER_ANSWERS = {"...", "…", "n/a", "none", "null", "answer", "todo", "?"}


def check_lengths(qa: GeneratedQA, s: SynthConfig) -> str | None:
    """Answer present; question and answer within bounds."""
    if not qa.answer.strip() or qa.answer.strip().lower() in _PLACEHOLDER_ANSWERS:
        return "answer_missing"
    q = len(qa.question.strip())
    if q < s.min_question_chars:
        return "question_too_short"
    if q > s.max_question_chars:
        return "question_too_long"
    if len(qa.answer) > s.max_answer_chars:
        return "answer_too_long"
    return None


def check_language(qa: GeneratedQA, expected_lang: str, s: SynthConfig) -> str | None:
    """The question is in the expected language ('' = anything goes)."""
    if not expected_lang:
        return None
    return None if detect_lang(qa.question, s.zh_min_cjk_share) == expected_lang else "wrong_language"


def check_seed_copy(qa: GeneratedQA, seed_questions: Sequence[str], s: SynthConfig) -> str | None:
    """The question does not copy any seed question (share of its word n-grams found in the seed)."""
    for seed in seed_questions:
        if ngram_overlap(qa.question, seed, s.copy_ngram) > s.max_copy_overlap:
            return "seed_copy"
    return None


def first_failed_filter(
    qa: GeneratedQA, expected_lang: str, seed_questions: Sequence[str], s: SynthConfig
) -> str | None:
    """Run the filters cheapest first; the first failing one's reason, or None."""
    return (
        check_lengths(qa, s)
        or check_language(qa, expected_lang, s)
        or check_seed_copy(qa, seed_questions, s)
    )
