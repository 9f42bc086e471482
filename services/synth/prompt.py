"""Versioned prompt templates and the chat requests built from them (pure; reading the template files aside).

A template file `prompts/<name>-<version>.md` holds the long shared instruction, then a line `=== task ===`, then
the per-request task text with `$placeholders` (string.Template). A request is
  system: the instruction (identical for every request of a template, so an engine's prefix cache reuses it)
  user:   the task text, then the seeds last, each in a numbered `<seed id="N">` block.
Seed text is data: anything in it that could open or close a seed block is escaped, so a seed cannot end its block
and speak as the task; the instruction says so too. The task's own values (a path's discipline and knowledge points,
which come from records and, through extraction, from seed text) are data as well: each is shown as a JSON string
or array (quotes, newlines and control characters escaped, so it cannot end its line and read as a line of the
task), seed tags escaped, cut to a bounded length.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from linksyn.common.grades import MAX_GRADE, MIN_GRADE
from linksyn.common.llm.base import ChatRequest, SamplingParams

TASK_MARKER = "=== task ==="
PROMPTS_DIR = Path(__file__).parent / "prompts"
# Anything that looks like a seed(s) tag, however spaced or cased: "<seed", "</ seeds", "< SEED".
_TAG_LIKE = re.compile(r"<(\s*/?\s*seeds?\b)", re.IGNORECASE)
MAX_TASK_TEXT_CHARS = 200
"""Longest text value (a discipline, one knowledge point) shown in a task."""
MAX_TASK_LIST_ITEMS = 16
"""Most items of a list value (knowledge points) shown in a task."""

def qa_schema(
    max_question_chars: int = 4000, max_answer_chars: int = 4000, max_rationale_chars: int = 2000, max_kps: int = 5
) -> dict[str, Any]:
    """Structured output of generation (link, multi_grade, hard). String bounds keep a constrained reply short
    enough to close its JSON within max_tokens (a reply cut by the token limit is not JSON); no other keys, since
    JSON Schema allows extra properties by default and a small model then appends an unbounded key of its own
    (SmolLM2-135M's link replies: 11 of 16 cut at max_tokens before, 1 of 16 with extra keys refused)."""
    return {
        "type": "object",
        "properties": {
            "question": {"type": "string", "minLength": 1, "maxLength": max_question_chars},
            "answer": {"type": "string", "minLength": 1, "maxLength": max_answer_chars},
            "rationale": {"type": "string", "maxLength": max_rationale_chars},
            "knowledge_points": {
                "type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 1, "maxItems": max_kps,
            },
            "discipline": {"type": "string", "maxLength": 40},
            "difficulty": {"type": "integer", "minimum": MIN_GRADE, "maximum": MAX_GRADE},
        },
        "required": ["question", "answer", "knowledge_points", "discipline", "difficulty"],
        "additionalProperties": False,
    }


QA_SCHEMA = qa_schema()
"""The generation schema with the default bounds."""

RATING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"difficulty": {"type": "integer", "minimum": MIN_GRADE, "maximum": MAX_GRADE}},
    "required": ["difficulty"],
    "additionalProperties": False,
}
"""Structured output of a difficulty re-annotation (hard mode)."""

REFINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string", "minLength": 1}, "rationale": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
"""Structured output of answer refinement."""


class PromptError(ValueError):
    """A template file is missing or malformed, or a placeholder has no value."""


@dataclass(frozen=True)
class PromptTemplate:
    """One versioned template: `name-version`, its instruction and its task text."""

    name: str
    version: str
    instruction: str
    task: str

    @property
    def id(self) -> str:
        """'link-v1': recorded in each SynthQA's prompt_version."""
        return f"{self.name}-{self.version}"

    @classmethod
    def parse(cls, name: str, version: str, text: str) -> "PromptTemplate":
        head, sep, tail = text.partition(f"\n{TASK_MARKER}\n")
        if not sep:
            raise PromptError(f"prompt {name}-{version} has no line {TASK_MARKER!r} separating instruction and task")
        return cls(name, version, head.strip(), tail.strip())

    def render(self, seeds: Sequence[str], **values: Any) -> tuple[dict[str, str], ...]:
        """The chat messages: instruction as system, then task text (its values shown as data, see task_value) and
        the delimited seeds as user."""
        try:
            task = string.Template(self.task).substitute({k: task_value(v) for k, v in values.items()})
        except KeyError as e:
            raise PromptError(f"prompt {self.id} needs a value for ${e.args[0]}; got {sorted(values)}") from None
        blocks = "\n".join(seed_block(i + 1, s) for i, s in enumerate(seeds))
        return ({"role": "system", "content": self.instruction}, {"role": "user", "content": f"{task}\n\n{blocks}"})


@lru_cache(maxsize=64)
def _read_template(directory: str, name: str, version: str) -> PromptTemplate:
    path = Path(directory) / f"{name}-{version}.md"
    if not path.is_file():
        have = sorted(p.stem for p in Path(directory).glob("*.md"))
        raise PromptError(f"prompt file {str(path)!r} does not exist; available: {have}")
    return PromptTemplate.parse(name, version, path.read_text(encoding="utf-8"))


def load_template(name: str, version: str = "v1", directory: str | Path | None = None) -> PromptTemplate:
    """Read `<directory>/<name>-<version>.md` (default: the shipped prompts); cached."""
    return _read_template(str(directory or PROMPTS_DIR), name, version)


def task_value(value: Any) -> str:
    """A placeholder value as a task shows it: a number as it is; text as one JSON string, seed tags escaped, cut
    to MAX_TASK_TEXT_CHARS; a list or tuple as a JSON array of at most MAX_TASK_LIST_ITEMS such strings."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return json.dumps([_task_text(v) for v in value[:MAX_TASK_LIST_ITEMS]], ensure_ascii=False)
    return json.dumps(_task_text(value), ensure_ascii=False)


def _task_text(value: Any) -> str:
    return escape_seed_text(str(value)[:MAX_TASK_TEXT_CHARS])


def escape_seed_text(text: str) -> str:
    """Neutralise anything that could open or close a seed block (`<seed`, `</seed>`, `<seeds`...)."""
    return _TAG_LIKE.sub(r"&lt;\1", text)


def seed_block(number: int, content: str) -> str:
    """One numbered, delimited data block."""
    return f'<seed id="{number}">\n{escape_seed_text(content)}\n</seed>'


def seed_text(question: str, answer: str, kps: Sequence[str] = (), max_chars: int = 2000) -> str:
    """A seed QA as shown inside its block."""
    parts = [f"Question: {question[:max_chars]}", f"Answer: {answer[:max_chars]}"]
    if kps:
        parts.append("Knowledge points: " + "; ".join(kps))
    return "\n".join(parts)


def chat_request(
    template: PromptTemplate,
    seeds: Sequence[str],
    params: SamplingParams,
    json_schema: dict[str, Any] | None,
    request_id: str,
    **values: Any,
) -> ChatRequest:
    """A ChatRequest from a template, its seeds (last) and its placeholder values."""
    return ChatRequest(
        messages=template.render(seeds, **values), params=params, json_schema=json_schema, request_id=request_id
    )
