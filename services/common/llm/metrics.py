"""Metrics of the LLM clients' flow control (prometheus_client default registry), labelled by the service that owns
the client (`LLM.service`), the model and the endpoint (a base URL, password masked).

Tokens and cost per service and model are the spend meter's (linksyn.common.spend.meter).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LABELS = ["service", "model", "endpoint"]

CONCURRENCY_LIMIT = Gauge(
    "linksyn_llm_concurrency_limit", "Requests an endpoint may have in flight now (the adaptive limit).", LABELS
)
IN_FLIGHT = Gauge("linksyn_llm_in_flight", "Requests in flight to an endpoint.", LABELS)
CIRCUIT_STATE = Gauge(
    "linksyn_llm_circuit_state", "An endpoint's circuit breaker: 0 closed, 1 half-open (one probe), 2 open.", LABELS
)
ATTEMPTS = Counter(
    "linksyn_llm_attempts_total",
    "HTTP attempts sent to an endpoint, by outcome: ok, throttled (429 with Retry-After), overloaded (503, 429 "
    "without), failed (timeout, connection error, 5xx, malformed reply), rejected (other 4xx).",
    LABELS + ["outcome"],
)
RETRIES = Counter(
    "linksyn_llm_retries_total",
    "Attempts sent again after a failure or an overload, by why (failed, overloaded, circuit_open).",
    ["service", "model", "reason"],
)
