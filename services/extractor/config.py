"""Settings of the extractor service (a section of LinksynConfig: `extractor:` in YAML, `LINKSYN_EXTRACTOR__*` in the env)."""

from __future__ import annotations

from linksyn.common.config import Section


class ExtractorConfig(Section):
    """The extractor stage."""
