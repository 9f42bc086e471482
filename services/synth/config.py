"""Settings of the synth service (a section of LinksynConfig: `synth:` in YAML, `LINKSYN_SYNTH__*` in the env)."""

from __future__ import annotations

from linksyn.common.config import Section


class SynthConfig(Section):
    """The synth stage."""
