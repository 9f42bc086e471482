"""Extraction prompts: versioned files in `prompts/` (`extract-v1.md`, ...), filled with the taxonomy and a seed.

A prompt file holds the long shared instruction (taxonomy included), then the line `<!-- seed message -->`, then
the per-seed message. The instruction becomes the system message and the seed message comes last, so every
request of a run shares one long prefix (an engine's prefix cache reuses it). The seed sits between `<seed>` and
`</seed>`; copies of those tags inside the seed's text are defused, so the seed cannot close its own delimiter
and smuggle instructions out of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from linksyn.common.taxonomy import Taxonomy
from linksyn.extractor.reply import ReplyLimits

PROMPT_DIR = Path(__file__).with_name("prompts")
SEED_MARKER = "<!-- seed message -->"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_SEED_TAG = re.compile(r"<\s*(/?)\s*seed\s*>", re.IGNORECASE)
_INSTRUCTION_FIELDS = {"taxonomy", "difficulty_levels", "max_kps", "max_kp_words"}
_SEED_FIELDS = {"question", "answer"}


class PromptError(ValueError):
    """A prompt file is missing or malformed."""


def _fill(template: str, values: dict[str, str]) -> str:
    # One pass: text substituted in (a seed containing "{{answer}}") is never expanded again.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def defuse_seed_tags(text: str) -> str:
    """'</seed>' inside seed text -> '[/seed]', so only our own tags delimit the seed."""
    return _SEED_TAG.sub(lambda m: f"[{m.group(1)}seed]", text)


def truncate(text: str, max_chars: int) -> str:
    """At most max_chars characters, marking a cut."""
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "\u2026"


@dataclass(frozen=True)
class ExtractionPrompt:
    """A loaded prompt version, its instruction already filled with the taxonomy."""

    version: str
    """File stem, e.g. 'extract-v1'; recorded in AnnotatedSeed.annotator."""
    instruction: str
    """The system message (the long shared prefix)."""
    seed_template: str
    """The per-seed user message with {{question}} and {{answer}}."""

    @classmethod
    def load(
        cls, version: str, taxonomy: Taxonomy, limits: ReplyLimits, prompt_dir: Path = PROMPT_DIR
    ) -> "ExtractionPrompt":
        matches = sorted(p for p in prompt_dir.glob(f"{version}.*") if p.suffix in (".md", ".txt"))
        if not matches:
            known = sorted(p.stem for p in prompt_dir.glob("*.md")) + sorted(p.stem for p in prompt_dir.glob("*.txt"))
            raise PromptError(f"no prompt file for version {version!r} in {str(prompt_dir)!r} (have: {known})")
        text = matches[0].read_text(encoding="utf-8")
        if text.count(SEED_MARKER) != 1:
            raise PromptError(f"prompt {str(matches[0])!r} must contain the line {SEED_MARKER!r} exactly once")
        head, seed_part = (s.strip("\n") for s in text.split(SEED_MARKER))
        for part, allowed, name in ((head, _INSTRUCTION_FIELDS, "instruction"), (seed_part, _SEED_FIELDS, "seed message")):
            unknown = set(_PLACEHOLDER.findall(part)) - allowed
            if unknown:
                raise PromptError(f"prompt {str(matches[0])!r}: unknown placeholders {sorted(unknown)} in the {name} "
                                  f"(allowed: {sorted(allowed)})")
        missing = _SEED_FIELDS - set(_PLACEHOLDER.findall(seed_part))
        if missing:
            raise PromptError(f"prompt {str(matches[0])!r}: the seed message lacks {sorted(missing)}")
        instruction = _fill(
            head,
            {
                "taxonomy": taxonomy.prompt_listing(),
                "difficulty_levels": "\n".join(f"  {line}" for line in taxonomy.difficulty_listing().splitlines()),
                "max_kps": str(limits.max_kps),
                "max_kp_words": str(limits.max_kp_words),
            },
        )
        return cls(version=version, instruction=instruction, seed_template=seed_part)

    def messages(self, question: str, answer: str, max_seed_chars: int = 4000) -> tuple[dict[str, str], ...]:
        """The chat for one seed: instruction first, the delimited seed last."""
        seed_message = _fill(
            self.seed_template,
            {
                "question": defuse_seed_tags(truncate(question.strip(), max_seed_chars)),
                "answer": defuse_seed_tags(truncate(answer.strip(), max_seed_chars)),
            },
        )
        return ({"role": "system", "content": self.instruction}, {"role": "user", "content": seed_message})
