"""Spend metrics (prometheus_client default registry), labelled by the service that spends or reads.

tokens/s per service and model: `rate(linksyn_llm_tokens_total[1m])`; cost so far: `linksyn_llm_cost_total`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TOKENS = Counter(
    "linksyn_llm_tokens_total", "LLM tokens spent, by model and kind (prompt, completion).",
    ["service", "model", "kind"],
)
COST = Counter(
    "linksyn_llm_cost_total", "LLM cost at budget.prices (in budget.currency), by model.", ["service", "model"]
)
REQUESTS = Counter(
    "linksyn_llm_requests_total", "LLM requests finished, by model and result (ok, failed).",
    ["service", "model", "result"],
)
BUDGET_LIMIT = Gauge(
    "linksyn_budget_limit", "A budget limit, by scope (run or a service) and unit (tokens or cost).",
    ["service", "scope", "unit"],
)
BUDGET_SPENT = Gauge(
    "linksyn_budget_spent", "Spend counted against a budget limit (every replica's usage reports of the run).",
    ["service", "scope", "unit"],
)
BUDGET_LEFT = Gauge(
    "linksyn_budget_left", "What a budget limit has left (limit - spent, >= 0).", ["service", "scope", "unit"]
)
