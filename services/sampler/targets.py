"""Target distributions over the controlled attributes (discipline, difficulty), and how probe reports move them.

Targets are class name -> share dicts (difficulty classes are grades "1".."5"). An empty dict means the default:
uniform over the classes present in the snapshot, or their natural shares (share of KP popularity). Shares are
normalised over the classes present; a present class missing from a non-empty dict gets 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Literal

import numpy as np


@dataclass(frozen=True)
class Targets:
    """Requested shares of paths per discipline and per difficulty grade (a path's class is its start KP's)."""

    discipline: dict[str, float] = field(default_factory=dict)
    difficulty: dict[str, float] = field(default_factory=dict)
    default: Literal["uniform", "natural"] = "uniform"


def check_shares(attribute: str, shares: dict[str, float]) -> None:
    """ValueError unless every share is a finite number >= 0 (a NaN or infinite share poisons the normalisation)."""
    bad = {k: v for k, v in shares.items() if not (math.isfinite(v) and v >= 0)}
    if bad:
        raise ValueError(f"{attribute} shares must be finite numbers >= 0; got {dict(list(bad.items())[:10])}")


def resolve_shares(
    requested: dict[str, float],
    classes: list[str],
    present: np.ndarray,
    natural: np.ndarray,
    default: str,
) -> np.ndarray:
    """Target share per class index (len(classes)), normalised over the present classes.

    present: bool per class (some KP of the snapshot has it); natural: natural weight per class."""
    present = np.asarray(present, dtype=bool)
    if requested:
        t = np.array([max(0.0, float(requested.get(c, 0.0))) for c in classes], dtype=np.float64)
    elif default == "natural":
        t = np.asarray(natural, dtype=np.float64).copy()
    else:
        t = np.ones(len(classes), dtype=np.float64)
    t[~present] = 0.0
    s = t.sum()
    if not s > 0:
        if requested:
            raise ValueError(
                f"targets {requested} give no weight to any class present in the graph ({[c for c, p in zip(classes, present) if p]})"
            )
        return t
    return t / s


@dataclass(frozen=True)
class Deficit:
    """One probe bucket as the target shift sees it."""

    discipline: str
    difficulty: int
    deficit: float


def shift_toward(current: dict[str, float], weak: dict[str, float], step: float) -> dict[str, float]:
    """Move the `current` distribution toward `weak` (non-negative weights, normalised here): (1-step)*current +
    step*weak. The total variation moved is step * TV(current, weak) <= step. No weak mass: unchanged."""
    if not 0.0 <= step <= 1.0:
        raise ValueError(f"step must be in [0, 1], got {step}")
    total_weak = sum(max(0.0, w) for w in weak.values())
    cur_total = sum(current.values())
    if total_weak <= 0 or cur_total <= 0:
        return dict(current)
    keys = list(dict.fromkeys([*current, *weak]))
    return {
        k: (1 - step) * current.get(k, 0.0) / cur_total + step * max(0.0, weak.get(k, 0.0)) / total_weak
        for k in keys
    }


def shift_targets(
    discipline: dict[str, float],
    difficulty: dict[str, float],
    deficits: Iterable[Deficit],
    step: float,
) -> tuple[dict[str, float], dict[str, float]]:
    """New (discipline, difficulty) targets from resolved current targets and a probe report's buckets: each
    attribute moves toward its classes' summed positive deficits, by at most `step` in total variation."""
    weak_disc: dict[str, float] = {}
    weak_diff: dict[str, float] = {}
    for d in deficits:
        if d.deficit > 0:
            if d.discipline:
                weak_disc[d.discipline] = weak_disc.get(d.discipline, 0.0) + d.deficit
            if 1 <= d.difficulty <= 5:
                g = str(d.difficulty)
                weak_diff[g] = weak_diff.get(g, 0.0) + d.deficit
    # Only classes the sampler can steer (those in the current targets) may gain mass.
    weak_disc = {k: v for k, v in weak_disc.items() if k in discipline}
    weak_diff = {k: v for k, v in weak_diff.items() if k in difficulty}
    return shift_toward(discipline, weak_disc, step), shift_toward(difficulty, weak_diff, step)


def with_shares(t: Targets, discipline: dict[str, float] | None, difficulty: dict[str, float] | None) -> Targets:
    """Targets with the given dicts replaced (None keeps the current one)."""
    return replace(
        t,
        discipline=dict(discipline) if discipline is not None else t.discipline,
        difficulty=dict(difficulty) if difficulty is not None else t.difficulty,
    )
