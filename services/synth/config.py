"""Settings of the synth service (a section of LinksynConfig: `synth:` in YAML, `LINKSYN_SYNTH__*` in the env)."""

from __future__ import annotations

from typing import Literal

from linksyn.common.config import Section
from linksyn.common.grades import GradeNumber
from linksyn.common.llm.config import LLMConfig
from linksyn.common.modes import check_mode_names
from pydantic import Field, model_validator


class SynthConfig(Section):
    """The synth stage: prompts, modes, refinement and filters."""

    model: str = "embedded"
    """Generator model spec for `linksyn.common.llm.load_llm` ('embedded' = packaged SmolLM2 in-process)."""
    refiner_model: str | None = None
    """Second model that re-answers each question (BoostQA refinement); None = no refinement (the embedded default,
    to keep CPU runs fast). Set it to a different, stronger model in real runs."""
    llm: LLMConfig = LLMConfig()
    """Backend options (timeouts, concurrency, batch size, device) of the generator and refiner engines."""
    default_mode: str = "link"
    """Mode for a path that names none (one of linksyn.common.modes.MODES)."""
    prompt_version: str = "v1"
    """Version suffix of the prompt files used (`prompts/<mode>-<version>.md`)."""
    prompts_dir: str | None = None
    """Folder of prompt files; None = the ones shipped in linksyn/synth/prompts."""
    temperature: float = Field(default=0.7, ge=0)
    """Sampling temperature of generation (rating and refinement are greedy)."""
    top_p: float = Field(default=0.95, gt=0, le=1)
    """Nucleus mass of generation."""
    max_tokens: int = Field(default=512, ge=16)
    """Most completion tokens per generation request."""
    rating_max_tokens: int = Field(default=64, ge=8)
    """Most completion tokens of a difficulty-rating request (hard mode)."""
    refine_max_tokens: int = Field(default=384, ge=16)
    """Most completion tokens of a refinement request."""
    grades: list[GradeNumber] = [2, 3, 4]
    """multi_grade: the grade levels (1 primary .. 5 graduate) each STEM path is asked at, one request each."""
    non_stem_grades: list[GradeNumber] = [3]
    """multi_grade: grade levels for paths outside `stem_disciplines` (BoostQA puts STEM first)."""
    stem_disciplines: list[str] = [
        "stem", "mathematics", "math", "physics", "chemistry", "biology", "computer science", "engineering",
        "astronomy", "statistics", "earth science", "medicine",
    ]
    """Disciplines (case-insensitive; any '/'-separated part of a path's discipline) that count as STEM."""
    max_seed_chars: int = Field(default=2000, ge=100)
    """Each seed's question and answer are cut to this many characters in a prompt."""
    min_question_chars: int = Field(default=15, ge=1)
    """Shorter generated questions are dropped (reason 'question_too_short')."""
    max_question_chars: int = Field(default=1000, ge=1)
    """Longer generated questions are dropped (reason 'question_too_long'); also the schema's maxLength.
    Keep schema bounds modest: llama-cpp-python's server crashed (SIGSEGV) on a schema with maxLength 4000."""
    max_answer_chars: int = Field(default=1000, ge=1)
    """Longer answers are dropped (reason 'answer_too_long'); also the schema's maxLength."""
    max_rationale_chars: int = Field(default=1000, ge=1)
    """Longest rationale the generation schema allows."""
    max_knowledge_points: int = Field(default=5, ge=1, le=8)
    """Most knowledge points the generation schema allows per QA."""
    lang: Literal["auto", "en", "zh"] = "auto"
    """Expected output language; 'auto' = the language of the path's seeds. Others drop ('wrong_language')."""
    zh_min_cjk_share: float = Field(default=0.3, ge=0, le=1)
    """Text counts as Chinese when CJK characters are at least this share of letters (CJK + Latin)."""
    copy_ngram: int = Field(default=8, ge=2)
    """Word n-gram length of the verbatim-copy check."""
    max_copy_overlap: float = Field(default=0.6, gt=0, le=1)
    """A question sharing more than this share of its n-grams with one seed's question is dropped ('seed_copy')."""

    @model_validator(mode="after")
    def _check_grades(self) -> "SynthConfig":
        check_mode_names([self.default_mode], "synth.default_mode")
        if not self.grades:
            raise ValueError("grades must name at least one grade level")
        return self
