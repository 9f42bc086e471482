"""Turning one source row into a `Seed`: pure functions, one per source schema, no I/O.

Each function takes the row as its source gives it (a dict from JSON/Parquet/HF datasets, or a list of CSV cells)
and the place it came from, and returns a Seed or raises `RowError` with a reason a person can act on.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Sequence

from linksyn.common import bounded_json
from linksyn.common.benchmarks import CHOICE_LETTERS
from linksyn.common.grades import MAX_GRADE, UNKNOWN, is_grade
from linksyn.common.ids import content_id
from linksyn.v1.records_pb2 import Seed

# Fields of the canonical seed row; anything else a row carries is kept in Seed.meta.
CANONICAL_FIELDS = ("id", "question", "answer", "subject", "discipline", "difficulty", "source", "lang", "meta")

_LEVEL = re.compile(r"^\s*level\s*(\d+)\s*$", re.IGNORECASE)
_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
# CJK Unified Ideographs (+ extension A) and CJK punctuation / full-width forms.
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


class RowError(ValueError):
    """A row that cannot become a Seed; the message says why (the reader adds file and line)."""


def json_row(raw: bytes) -> Any:
    """One JSON document (a line of a JSON Lines file, the value of a Kafka record) as Python values, or RowError
    saying what is wrong with the bytes: "invalid UTF-8 at byte N", "invalid JSON: <what> at column C", or a JSON
    limit (nesting over 64 levels, a number over 4300 digits, a lone surrogate: linksyn.common.bounded_json)."""
    try:
        return bounded_json.loads(raw)
    except bounded_json.BoundedJSONError as e:
        raise RowError(str(e)) from None


def guess_lang(text: str) -> str:
    """'zh' when CJK characters make up at least a fifth of the non-space text, else 'en'.

    Only used when a row carries no `lang`; the seed formats linksyn reads are English or Chinese.
    """
    # str.split() drops exactly the characters isspace() calls space; the regex then counts in C, not per character
    # in Python (this runs for every seed without a lang: a loop over characters cost more than the rest of the row).
    chars = "".join(text.split())
    if not chars:
        return "en"
    cjk = len(_CJK.findall(chars))
    return "zh" if cjk * 5 >= len(chars) else "en"


def _text(row: Mapping[str, Any], key: str) -> str:
    """A required, non-empty string field."""
    if key not in row or row[key] is None:
        raise RowError(f"missing {key!r}")
    value = row[key]
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise RowError(f"{key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RowError(f"empty {key!r}")
    return value


def _optional_text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise RowError(f"{key!r} must be a string, got {type(value).__name__}")
    return str(value).strip()


def parse_difficulty(value: Any) -> int:
    """A grade (linksyn.common.grades) from an int, a digit string or "Level k"; 0 when absent. Anything else is
    an error."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise RowError(f"difficulty must be an integer 0-{MAX_GRADE}, got {value!r}")
    if isinstance(value, int):
        level = value
    elif isinstance(value, float) and value.is_integer():
        level = int(value)
    elif isinstance(value, str):
        m = _LEVEL.match(value)
        text = m.group(1) if m else value.strip()
        if not text.isdigit():
            raise RowError(f"difficulty must be an integer 0-{MAX_GRADE} or 'Level k', got {value!r}")
        level = int(text)
    else:
        raise RowError(f"difficulty must be an integer 0-{MAX_GRADE}, got {value!r}")
    if not (level == UNKNOWN or is_grade(level)):
        raise RowError(f"difficulty must be between 0 and {MAX_GRADE}, got {value!r}")
    return level


def _meta_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _seed(
    *,
    question: str,
    answer: str,
    source: str,
    id: str = "",
    subject: str = "",
    discipline: str = "",
    difficulty: int = 0,
    lang: str = "",
    meta: Mapping[str, str] | None = None,
) -> Seed:
    return Seed(
        # Content-derived, so the same QA pair read twice (a replay, a re-push) keeps its id.
        id=id or content_id(question, answer),
        question=question,
        answer=answer,
        source=source,
        subject=subject,
        discipline=discipline,
        difficulty=difficulty,
        lang=lang or guess_lang(question),
        meta=dict(meta or {}),
    )


def canonical_seed(row: Mapping[str, Any], source: str) -> Seed:
    """The canonical seed row {id?, question, answer, subject?, discipline?, difficulty?, source?, lang?, meta?}.

    Unknown fields are kept in meta (JSON-encoded when not strings). `source` is used when the row has none.
    A GSM8K answer's final `#### n` is also copied to meta["final_answer"].
    """
    if not isinstance(row, Mapping):
        raise RowError(f"a seed row must be a JSON object, got {type(row).__name__}")
    question = _text(row, "question")
    answer = _text(row, "answer")
    meta: dict[str, str] = {}
    given_meta = row.get("meta")
    if given_meta is not None:
        if not isinstance(given_meta, Mapping):
            raise RowError(f"'meta' must be an object, got {type(given_meta).__name__}")
        meta.update({str(k): _meta_value(v) for k, v in given_meta.items()})
    for k, v in row.items():
        if k not in CANONICAL_FIELDS and v is not None:
            meta[str(k)] = _meta_value(v)
    final = _GSM8K_FINAL.search(answer)
    if final and "final_answer" not in meta:
        meta["final_answer"] = final.group(1)
    return _seed(
        id=_optional_text(row, "id"),
        question=question,
        answer=answer,
        source=_optional_text(row, "source") or source,
        subject=_optional_text(row, "subject"),
        discipline=_optional_text(row, "discipline"),
        difficulty=parse_difficulty(row.get("difficulty")),
        lang=_optional_text(row, "lang"),
        meta=meta,
    )


def gsm8k_seed(row: Mapping[str, Any], source: str) -> Seed:
    """A GSM8K row {question, answer}: the answer is the worked solution ending in `#### n` (kept whole)."""
    if not isinstance(row, Mapping):
        raise RowError(f"a GSM8K row must be a JSON object, got {type(row).__name__}")
    question = _text(row, "question")
    answer = _text(row, "answer")
    final = _GSM8K_FINAL.search(answer)
    if not final:
        raise RowError("GSM8K answer has no final '#### <number>' line")
    return _seed(question=question, answer=answer, source=source, lang="en", meta={"final_answer": final.group(1)})


def last_boxed(text: str) -> str | None:
    r"""The content of the last \boxed{...} (braces may nest), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i = start + len("\\boxed{")
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None


def math_seed(row: Mapping[str, Any], source: str) -> Seed:
    """A MATH row {problem, level "Level k", type, solution}: level -> difficulty k, type -> subject."""
    if not isinstance(row, Mapping):
        raise RowError(f"a MATH row must be a JSON object, got {type(row).__name__}")
    question = _text(row, "problem")
    answer = _text(row, "solution")
    level = row.get("level")
    # MATH has a few "Level ?" rows: an unknown level is no level, not a bad row.
    difficulty = 0 if isinstance(level, str) and level.strip().lower() == "level ?" else parse_difficulty(level)
    meta = {}
    boxed = last_boxed(answer)
    if boxed is not None:
        meta["final_answer"] = boxed
    return _seed(
        question=question,
        answer=answer,
        source=source,
        subject=_optional_text(row, "type"),
        difficulty=difficulty,
        lang="en",
        meta=meta,
    )


def choice_question(question: str, choices: Sequence[str]) -> str:
    """The stem followed by the lettered choices, one per line ("A. ..."), as a reader would see the question."""
    lines = [question.rstrip(), ""]
    lines += [f"{letter}. {choice}" for letter, choice in zip(CHOICE_LETTERS, choices)]
    return "\n".join(lines)


def multiple_choice_seed(
    question: Any, choices: Sequence[Any], answer: Any, *, subject: str, source: str, lang: str
) -> Seed:
    """A four-choice question; `answer` is a letter A-D or a 0-based index. Answer text = "B. <choice B>"."""
    stem = _text({"question": question}, "question")
    if len(choices) != len(CHOICE_LETTERS):
        raise RowError(f"expected {len(CHOICE_LETTERS)} choices, got {len(choices)}")
    texts = ["" if c is None else str(c) for c in choices]
    if isinstance(answer, bool):
        raise RowError(f"answer must be a letter A-D or an index 0-3, got {answer!r}")
    if isinstance(answer, int):
        if not 0 <= answer < len(CHOICE_LETTERS):
            raise RowError(f"answer index must be 0-3, got {answer}")
        letter = CHOICE_LETTERS[answer]
    else:
        letter = str(answer if answer is not None else "").strip().upper()
        if letter not in CHOICE_LETTERS:
            raise RowError(f"answer must be one of A, B, C, D, got {answer!r}")
    chosen = texts[CHOICE_LETTERS.index(letter)]
    return _seed(
        question=choice_question(stem, texts),
        answer=f"{letter}. {chosen}",
        source=source,
        subject=subject,
        lang=lang,
        meta={"choices": json.dumps(texts, ensure_ascii=False), "answer_letter": letter},
    )


def mmlu_csv_seed(cells: Sequence[str], *, subject: str, source: str) -> Seed:
    """An MMLU CSV row (no header): question, A, B, C, D, answer letter."""
    if len(cells) != 6:
        raise RowError(f"expected 6 columns (question, A, B, C, D, answer), got {len(cells)}")
    return multiple_choice_seed(cells[0], cells[1:5], cells[5], subject=subject, source=source, lang="en")


def cmmlu_csv_seed(cells: Sequence[str], *, subject: str, source: str) -> Seed:
    """A CMMLU CSV row under the header `,Question,A,B,C,D,Answer` (first column: row index)."""
    if len(cells) != 7:
        raise RowError(f"expected 7 columns (index, Question, A, B, C, D, Answer), got {len(cells)}")
    return multiple_choice_seed(cells[1], cells[2:6], cells[6], subject=subject, source=source, lang="zh")


def record_seed(row: Mapping[str, Any], source: str, *, subject: str = "") -> Seed:
    """A row of a columnar source (Parquet, HF datasets), whichever known schema its columns match:

    MATH (problem, solution), HF-MMLU (question, choices, answer index/letter), CMMLU-like (Question, A-D,
    Answer), or the canonical seed row (question, answer; GSM8K rows are canonical with a `#### n` answer).
    `subject` is the fallback subject of multiple-choice rows (their file name) when the row has none.
    """
    if "problem" in row and "solution" in row:
        return math_seed(row, source)
    if "choices" in row and "question" in row and "answer" in row:
        choices = row["choices"]
        if not isinstance(choices, Sequence) or isinstance(choices, (str, bytes)):
            raise RowError(f"'choices' must be a list, got {type(choices).__name__}")
        return multiple_choice_seed(
            row["question"],
            list(choices),
            row["answer"],
            subject=_optional_text(row, "subject") or subject,
            source=source,
            lang=_optional_text(row, "lang") or guess_lang(str(row["question"])),
        )
    if "Question" in row and all(k in row for k in CHOICE_LETTERS) and "Answer" in row:
        return multiple_choice_seed(
            row["Question"],
            [row[k] for k in CHOICE_LETTERS],
            row["Answer"],
            subject=subject,
            source=source,
            lang=guess_lang(str(row["Question"])),
        )
    return canonical_seed(row, source)
