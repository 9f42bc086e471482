"""The machine-readable side of every bench: figures written with `--json PATH`, read by bench/run_all.py.

A bench keeps printing its own tables; with `--json PATH` it also writes

    {"figures": [Figure, ...], "notes": ["...", ...]}

where each figure is one measured number with the baseline it is compared against (measured in the same run), the
ratio, and the aim the issue set for it, if any. A row that could not be measured here (data or a tool absent) is
a figure with `value` None and `skipped` saying why, so the report shows it as skipped instead of leaving it out.

Use from a bench (run as `python bench/<name>.py`, so this folder is on sys.path):

    from report import Aim, Figure, add_json_option, write_json
    add_json_option(ap)                       # adds --json PATH
    ...
    if args.json:
        write_json(args.json, figures, notes)
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Literal

Op = Literal[">=", ">", "<=", "<"]


@dataclass(frozen=True)
class Aim:
    """A target from the issue: `on` (the figure's value or its ratio to the baseline) `op` `target`."""

    op: Op
    target: float
    on: Literal["value", "ratio"] = "value"

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        x = ratio if self.on == "ratio" else value
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return None
        return {">=": x >= self.target, ">": x > self.target, "<=": x <= self.target, "<": x < self.target}[self.op]

    def text(self, unit: str = "") -> str:
        what = "ratio " if self.on == "ratio" else ""
        whole = self.target >= 1000 and self.target == int(self.target)
        target = f"{self.target:,.0f}" if whole else f"{self.target:g}"
        return f"{what}{self.op} {target}{' ' + unit if unit and self.on == 'value' else ''}"


@dataclass
class Figure:
    """One measured number. `ratio` is value / baseline_value unless the bench sets it (e.g. when lower is better
    and the bench reports baseline / value, or a ratio of CPU times); `note` says which way it reads when unusual."""

    name: str
    value: float | None
    unit: str = ""
    baseline_name: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None
    aim: Aim | None = None
    note: str = ""
    skipped: str | None = None
    """Why this figure was not measured here (data or tool absent); value is then None."""

    def __post_init__(self) -> None:
        if self.ratio is None and self.value is not None and self.baseline_value:
            self.ratio = self.value / self.baseline_value

    @property
    def met(self) -> bool | None:
        """Whether the aim is met; None when there is no aim or nothing was measured."""
        return self.aim.met(self.value, self.ratio) if self.aim else None

    @classmethod
    def skip(cls, name: str, reason: str, unit: str = "", aim: Aim | None = None) -> "Figure":
        return cls(name, None, unit, aim=aim, skipped=reason)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["met"] = self.met
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Figure":
        d = {k: v for k, v in d.items() if k != "met"}
        if d.get("aim"):
            d["aim"] = Aim(**d["aim"])
        return cls(**d)


@dataclass
class BenchFigures:
    """What one bench wrote: its figures and free-text notes (data used, rows skipped, caveats)."""

    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def add_json_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--json", type=Path, default=None, metavar="PATH",
                    help="also write the figures here as JSON (bench/report.py; read by bench/run_all.py)")


def write_json(path: str | Path, figures: Iterable[Figure], notes: Iterable[str] = ()) -> None:
    Path(path).write_text(json.dumps({"figures": [f.to_dict() for f in figures], "notes": list(notes)}, indent=1,
                                     default=float) + "\n")


def read_json(path: str | Path) -> BenchFigures:
    data = json.loads(Path(path).read_text())
    return BenchFigures([Figure.from_dict(f) for f in data.get("figures", [])], list(data.get("notes", [])))
