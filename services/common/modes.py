"""Synthesis modes: defined once, as the `SynthesisMode` enum of protos/linksyn/v1/records.proto; here their names
for configuration, prompts, metrics and dataset rows ("link", "multi_grade", "hard").

A new mode is a new enum value in records.proto plus its prompt file and its branch in linksyn.synth.synthesis
(docs/DESIGN.md, "Where things go").
"""

from __future__ import annotations

from linksyn.v1.records_pb2 import SynthesisMode

UNSPECIFIED: int = SynthesisMode.SYNTHESIS_MODE_UNSPECIFIED
LINK: int = SynthesisMode.SYNTHESIS_MODE_LINK
MULTI_GRADE: int = SynthesisMode.SYNTHESIS_MODE_MULTI_GRADE
HARD: int = SynthesisMode.SYNTHESIS_MODE_HARD

MODE_NAMES: dict[int, str] = {
    v: SynthesisMode.Name(v).removeprefix("SYNTHESIS_MODE_").lower()  # type: ignore[arg-type]
    for v in sorted(SynthesisMode.values()) if v != UNSPECIFIED
}
"""Mode value -> name, in enum order: {1: "link", 2: "multi_grade", 3: "hard"}."""
MODES: tuple[str, ...] = tuple(MODE_NAMES.values())
"""Every mode's name."""
_VALUES = {name: v for v, name in MODE_NAMES.items()}


def mode_name(value: int) -> str:
    """The name of a mode value ("" for UNSPECIFIED); ValueError for a value no mode has."""
    if value == UNSPECIFIED:
        return ""
    try:
        return MODE_NAMES[value]
    except KeyError:
        raise ValueError(f"unknown synthesis mode value {value}; known: {MODE_NAMES}") from None


def mode_value(name: str) -> int:
    """The enum value of a mode name; ValueError naming the known modes otherwise."""
    try:
        return _VALUES[name]
    except KeyError:
        raise ValueError(f"unknown synthesis mode {name!r}; known: {', '.join(MODES)}") from None


def check_mode_names(names: object, what: str) -> None:
    """ValueError naming `what` if any of `names` is not a mode."""
    bad = sorted(set(map(str, names)) - set(MODES))  # type: ignore[call-overload]
    if bad:
        raise ValueError(f"{what} has unknown modes {bad}; known: {', '.join(MODES)}")
