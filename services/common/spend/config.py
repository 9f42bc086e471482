"""The `budget` section (shared by every service): prices per model, the run's budget and each service's."""

from __future__ import annotations

from pydantic import Field

from linksyn.common.config import Section


class Price(Section):
    """What one model costs, per million tokens, in budget.currency."""

    prompt: float = Field(default=0.0, ge=0)
    """Price of a million prompt (input) tokens."""
    completion: float = Field(default=0.0, ge=0)
    """Price of a million completion (output) tokens."""


class ServiceBudget(Section):
    """One service's share of the budget (0 = no limit of its own)."""

    max_tokens: int = Field(default=0, ge=0)
    """Prompt + completion tokens this service may spend in the run (all its replicas together)."""
    max_cost: float = Field(default=0.0, ge=0)
    """Money this service may spend in the run (all its replicas together), at `prices`."""


class BudgetConfig(Section):
    """Cost and budget of a run. Spending services (extractor, synth) report their tokens and cost on the usage
    topic; once the run's spend (or one service's) reaches its limit the sampler stops emitting paths and the work
    already in flight finishes, so a run overshoots by at most what was in flight (the sampler emits only as many
    paths as the budget left is projected to pay for). Extraction is bounded by the seeds given, not by the budget."""

    prices: dict[str, Price] = {}
    """Model name (as lineage records it: `openai:MODEL` for an openai spec, `hf:SmolLM2-135M-Instruct` for the
    embedded model, `vllm:MODEL`) -> price per million prompt and completion tokens. A model without a price costs
    0; a money limit (max_cost) needs a price for every model a spending service uses."""
    currency: str = "USD"
    """What prices are in (shown with costs)."""
    max_tokens: int = Field(default=0, ge=0)
    """Prompt + completion tokens the whole run may spend (every service and replica); 0 = no limit."""
    max_cost: float = Field(default=0.0, ge=0)
    """Money the whole run may spend (every service and replica), at `prices`; 0 = no limit."""
    services: dict[str, ServiceBudget] = {}
    """Per-service limits, e.g. `{synth: {max_cost: 20}}` (keys: service names)."""
    run: str = ""
    """The budget period: usage reports carry it and readers count only those of their own run, so a new run id
    starts a new budget on the same topics (`linksyn run` is a period of its own anyway: a fresh bus)."""
    report_every_s: float = Field(default=1.0, gt=0)
    """How often a spending service reports its cumulative usage (and updates its cost metrics)."""
    first_paths: int = Field(default=8, ge=1)
    """With a limit set, paths the sampler emits before it projects a path's cost: it waits until they are all paid
    for (or none is in flight), then emits only what the budget left is projected to pay for."""

    def limited(self) -> bool:
        """Whether any limit is set."""
        return bool(self.max_tokens or self.max_cost or any(s.max_tokens or s.max_cost for s in self.services.values()))

    def needs_prices(self) -> bool:
        """Whether a money limit is set (every model spent on must then have a price)."""
        return bool(self.max_cost or any(s.max_cost for s in self.services.values()))
