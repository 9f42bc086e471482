"""Settings of the sampler service (a section of LinksynConfig: `sampler:` in YAML, `LINKSYN_SAMPLER__*` in the env)."""

from __future__ import annotations

from linksyn.common.config import Section


class SamplerConfig(Section):
    """The sampler stage."""
