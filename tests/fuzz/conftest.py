"""Bounded fuzzing (issue 21): each target runs FUZZ_MAX_EXAMPLES hypothesis examples (default 300: about a minute
for all targets on 2 cores), starting from the regression corpus (tests/hostile_inputs.py). The executions and
seconds per target are printed at the end of the run (and written as JSON to $FUZZ_REPORT when set)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import pytest

FUZZ_MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "300"))


@dataclass
class Budget:
    """Counts a target's executions and the time they took."""

    name: str
    started: float = field(default_factory=time.monotonic)
    executions: int = 0
    spent_s: float = 0.0

    def run(self) -> bool:
        """Count one execution (always True: an example that returned early would make hypothesis's replays
        inconsistent)."""
        self.executions += 1
        self.spent_s = time.monotonic() - self.started
        return True


BUDGETS: dict[str, Budget] = {}


@pytest.fixture
def budget(request: pytest.FixtureRequest) -> Budget:
    b = BUDGETS[request.node.name] = Budget(request.node.name)
    return b


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if not BUDGETS:
        return
    terminalreporter.section("fuzz executions per target")
    for b in BUDGETS.values():
        terminalreporter.write_line(f"{b.name:70s} {b.executions:7d} executions in {b.spent_s:5.1f} s")
    if os.environ.get("FUZZ_REPORT"):
        with open(os.environ["FUZZ_REPORT"], "w") as f:
            json.dump({b.name: {"executions": b.executions, "seconds": round(b.spent_s, 2)} for b in BUDGETS.values()},
                      f, indent=2)
