"""Settings of the graph service (a section of LinksynConfig: `graph:` in YAML, `LINKSYN_GRAPH__*` in the env)."""

from __future__ import annotations

from linksyn.common.config import Section


class GraphConfig(Section):
    """The graph stage."""
