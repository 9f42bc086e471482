"""What an annotator produces for one seed, and which of a seed's own labels it must respect.

Both annotators (the LLM one in `llm_annotator.py`, the LLM-free one in `keyphrase.py`) return an `Outcome` per
seed: an `Annotation` or the reason it failed. Labels a seed carries (`SeedLabels`) override predictions when
`trust_seed_labels` is on: the seed's discipline field or subject (or source, for GSM8K) fixes the discipline and
subdiscipline; its difficulty field (MATH level) or the level its subject implies (MMLU prefix) fixes the difficulty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linksyn.common.taxonomy import Taxonomy
from linksyn.v1.records_pb2 import AnnotatedSeed, Seed


@dataclass
class Annotation:
    """One annotated seed, before encoding."""

    kps: list[str]
    discipline: str
    subdiscipline: str
    difficulty: int
    annotator: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    repairs: list[str] = field(default_factory=list)
    """What validation had to fix in the reply (for logs and metrics)."""

    def to_proto(self, seed: Seed) -> AnnotatedSeed:
        return AnnotatedSeed(
            seed=seed, kps=self.kps, discipline=self.discipline, subdiscipline=self.subdiscipline,
            difficulty=self.difficulty, annotator=self.annotator, prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
        )


@dataclass
class Outcome:
    """An annotation, or why there is none. `retryable` failures may succeed on another try (an LLM reply)."""

    annotation: Annotation | None = None
    error: str | None = None
    retryable: bool = True
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cause: str = ""
    """Of a failure: 'llm' (the request failed), 'reply' (unusable reply), 'input' (the seed), 'normalisation'."""
    kp_drops: dict[str, int] = field(default_factory=dict)
    """KPs the validator dropped, by reason (linksyn.extractor.kp_check.DROP_REASONS)."""
    ungrounded: int = 0
    """Kept KPs not found in the seed's own text (LLM mode)."""

    @classmethod
    def failed(cls, error: str, cause: str, retryable: bool = True, prompt_tokens: int = 0,
               completion_tokens: int = 0) -> "Outcome":
        return cls(None, error, retryable, prompt_tokens, completion_tokens, cause)


@dataclass(frozen=True)
class SeedLabels:
    """The labels a seed carries, mapped to the taxonomy: empty strings / 0 where it carries none."""

    discipline: str = ""
    subdiscipline: str = ""
    difficulty: int = 0


def seed_labels(seed: Seed, taxonomy: Taxonomy) -> SeedLabels:
    """Discipline from Seed.discipline (if the taxonomy knows it), else from the subject/source mapping;
    difficulty from Seed.difficulty, else the level the subject implies."""
    label = taxonomy.label_for(seed.subject, seed.source)
    discipline = subdiscipline = ""
    if seed.discipline:
        resolved = taxonomy.resolve_discipline(seed.discipline)
        if resolved:
            discipline = resolved
            subdiscipline = label.subdiscipline if label and label.discipline == resolved else ""
    if not discipline and label:
        discipline, subdiscipline = label.discipline, label.subdiscipline
    difficulty = seed.difficulty if 1 <= seed.difficulty <= 5 else (label.difficulty if label else 0)
    return SeedLabels(discipline, subdiscipline, difficulty)
