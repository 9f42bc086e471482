"""LLM spend: prices, tokens and cost per service and model, and the budget that stops a run.

The contract between the services that spend (extractor, synth: `UsageMeter`) and those that read the spend (the
sampler, which stops emitting paths when the budget is reached; the sink, which puts the spend in the dataset card:
`UsageFollower`) is the `linksyn.usage` topic of UsageReport records; no service imports another.
"""

from linksyn.common.spend.config import BudgetConfig, Price, ServiceBudget
from linksyn.common.spend.ledger import Spend, UsageLedger, budget_exhausted, cost_of
from linksyn.common.spend.meter import UsageMeter
from linksyn.common.spend.follow import UsageFollower

__all__ = [
    "BudgetConfig", "Price", "ServiceBudget", "Spend", "UsageLedger", "budget_exhausted", "cost_of", "UsageMeter",
    "UsageFollower",
]
