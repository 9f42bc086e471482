"""The extraction reply: its JSON schema, and turning an LLM's text into a validated, repaired annotation.

The schema is sent to engines that can constrain decoding; the reply is validated anyway, because not every
engine constrains and a truncated reply is never valid. Repairs are small and recorded (`ParsedReply.repairs`);
anything that cannot be repaired raises `ReplyError` with the offending value, and the stage retries the seed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from linksyn.common.grades import MAX_GRADE, MIN_GRADE
from linksyn.common.llm.reply import ReplyError, first_json_object
from linksyn.common.taxonomy import Taxonomy

_WS = re.compile(r"\s+")
# Bullets, numbering and quotes a model wraps a list item in: "- ", "1. ", "* ", '"...'.
_ITEM_DECOR = re.compile(r"^(?:[-*\u2022]+|\d+[.)])\s+|^[\"'`]+|[\"'`]+$")
_RATIONALE_CHARS = 500
_JUNK_ROOM = 3
"""A reply keeps up to this many times max_kps KPs; the extractor keeps max_kps after dropping junk."""


@dataclass(frozen=True)
class ReplyLimits:
    """Bounds on knowledge points (from ExtractorConfig)."""

    max_kps: int = 8
    max_kp_chars: int = 64
    max_kp_words: int = 8


@dataclass
class ParsedReply:
    """A validated reply. `discipline`/`subdiscipline`/`difficulty` are None when the reply's value was unusable
    and the caller said it does not need it (the seed's own label stands in)."""

    knowledge_points: list[str]
    discipline: str | None
    subdiscipline: str | None
    difficulty: int | None
    rationale: str = ""
    repairs: list[str] = field(default_factory=list)


def extraction_schema(taxonomy: Taxonomy, limits: ReplyLimits) -> dict[str, Any]:
    """JSON schema of the reply; disciplines and subdisciplines are enums so constrained decoding stays inside
    the taxonomy."""
    return {
        "type": "object",
        "properties": {
            "knowledge_points": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": limits.max_kp_chars},
                "minItems": 1,
                "maxItems": limits.max_kps,
            },
            "discipline": {"type": "string", "enum": taxonomy.discipline_names()},
            "subdiscipline": {"type": "string", "enum": taxonomy.subdiscipline_names()},
            "difficulty": {"type": "integer", "minimum": MIN_GRADE, "maximum": MAX_GRADE},
            "rationale": {"type": "string", "maxLength": _RATIONALE_CHARS},
        },
        "required": ["knowledge_points", "discipline", "subdiscipline", "difficulty"],
        "additionalProperties": False,
    }


def clean_kp(raw: str) -> str:
    """Trim, collapse whitespace, strip list bullets and wrapping quotes."""
    text = _WS.sub(" ", raw).strip()
    prev = None
    while prev != text:
        prev = text
        text = _ITEM_DECOR.sub("", text).strip().rstrip(".;,:").strip()
    return text


def validate_kps(raw: Any, limits: ReplyLimits, repairs: list[str]) -> list[str]:
    """1..3 x max_kps cleaned, distinct (case-insensitively), non-empty KPs within the length caps (the extractor
    keeps max_kps of those its validator passes)."""
    if isinstance(raw, str):
        repairs.append("knowledge_points was a string; split on ';' / ','")
        raw = re.split(r"[;,\n]", raw)
    if not isinstance(raw, list):
        raise ReplyError(f"knowledge_points must be a list of strings, got {type(raw).__name__}: {raw!r:.120}")
    kept: list[str] = []
    seen: set[str] = set()
    too_long: list[str] = []
    for item in raw:
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            repairs.append(f"dropped non-string knowledge point {item!r:.60}")
            continue
        kp = clean_kp(item)
        if not kp:
            continue
        if len(kp) > limits.max_kp_chars or len(kp.split()) > limits.max_kp_words:
            too_long.append(kp)
            continue
        key = kp.lower()
        if key in seen:
            continue
        seen.add(key)
        kept.append(kp)
    if too_long:
        repairs.append(f"dropped {len(too_long)} over-long knowledge point(s)")
    if not kept:
        detail = (
            f"; {len(too_long)} over the limit of {limits.max_kp_chars} chars / {limits.max_kp_words} words, "
            f"e.g. {too_long[0][:80]!r}"
            if too_long
            else ""
        )
        raise ReplyError(f"no usable knowledge point among {len(raw)} given{detail}")
    # Room for junk the extractor's validator drops next (choice letters, numbers): it keeps max_kps of the rest.
    cap = _JUNK_ROOM * limits.max_kps
    if len(kept) > cap:
        repairs.append(f"kept the first {cap} of {len(kept)} knowledge points")
        kept = kept[:cap]
    return kept


def validate_difficulty(raw: Any, repairs: list[str]) -> int:
    """A grade (MIN_GRADE..MAX_GRADE); numbers outside are clamped, non-numbers rejected."""
    if isinstance(raw, bool) or raw is None:
        raise ReplyError(f"difficulty must be an integer {MIN_GRADE}-{MAX_GRADE}, got {raw!r}")
    if isinstance(raw, int):
        level = raw
    elif isinstance(raw, float) or (isinstance(raw, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", raw)):
        value = float(raw)
        if not math.isfinite(value):  # inf, nan, or a numeral too long for a float
            raise ReplyError(f"difficulty must be an integer {MIN_GRADE}-{MAX_GRADE}, got {raw!r:.60}")
        level = int(round(value))
    else:
        raise ReplyError(f"difficulty must be an integer {MIN_GRADE}-{MAX_GRADE}, got {raw!r:.60}")
    if not MIN_GRADE <= level <= MAX_GRADE:
        repairs.append(f"difficulty {raw!r:.60} clamped to {MIN_GRADE}-{MAX_GRADE}")
        level = min(MAX_GRADE, max(MIN_GRADE, level))
    return level


def parse_reply(
    text: str,
    taxonomy: Taxonomy,
    limits: ReplyLimits,
    need_discipline: bool = True,
    need_difficulty: bool = True,
) -> ParsedReply:
    """Validate and repair one reply. With `need_*` False, an unusable field becomes None instead of an error
    (the seed carries a trusted label for it)."""
    obj = first_json_object(text)
    repairs: list[str] = []
    if "knowledge_points" not in obj:
        raise ReplyError(f"reply has no 'knowledge_points' (keys: {sorted(obj)})")
    kps = validate_kps(obj["knowledge_points"], limits, repairs)

    discipline: str | None = None
    raw_disc = obj.get("discipline")
    raw_sub = obj.get("subdiscipline")
    if isinstance(raw_disc, str) and raw_disc.strip():
        discipline = taxonomy.resolve_discipline(raw_disc)
        if discipline is not None and discipline != raw_disc:
            repairs.append(f"discipline {raw_disc!r} -> {discipline!r}")
    if discipline is None and isinstance(raw_sub, str):
        discipline = taxonomy.discipline_of(raw_sub.strip())  # a known subdiscipline names its discipline
    if discipline is None and need_discipline:
        if raw_disc is None:
            raise ReplyError("reply has no 'discipline'")
        raise ReplyError(
            f"discipline {raw_disc!r:.60} is not in the taxonomy (closest: {', '.join(taxonomy.closest_names(str(raw_disc)))})"
        )

    subdiscipline: str | None = None
    if discipline is not None and isinstance(raw_sub, str) and raw_sub.strip():
        subdiscipline = taxonomy.resolve_subdiscipline(raw_sub, discipline)
        if subdiscipline is None:
            # A subdiscipline of another discipline, or none at all: keep the discipline, drop the subdiscipline.
            repairs.append(f"subdiscipline {raw_sub!r:.60} is not under {discipline!r}; left empty")
            subdiscipline = ""

    difficulty: int | None = None
    if "difficulty" in obj or need_difficulty:
        try:
            difficulty = validate_difficulty(obj.get("difficulty"), repairs)
        except ReplyError:
            if need_difficulty:
                raise
            difficulty = None

    rationale = obj.get("rationale")
    rationale = rationale.strip()[:_RATIONALE_CHARS] if isinstance(rationale, str) else ""
    return ParsedReply(kps, discipline, subdiscipline, difficulty, rationale, repairs)
