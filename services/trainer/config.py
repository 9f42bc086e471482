"""Settings of the trainer service (a section of LinksynConfig: `trainer:` in YAML, `LINKSYN_TRAINER__*` in the env)."""

from __future__ import annotations

from linksyn.common.config import Section


class TrainerConfig(Section):
    """The trainer stage."""
