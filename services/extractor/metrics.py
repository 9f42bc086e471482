"""Extractor metrics (default registry; the consumer loop's generic metrics live in linksyn.common.runtime.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TOKENS = Counter(
    "linksyn_extractor_tokens_total", "LLM tokens spent on annotation.", ["service", "kind"]
)
"""kind: 'prompt' or 'completion'."""
ANNOTATED = Counter("linksyn_extractor_annotated_total", "Seeds annotated.", ["service"])
PARSE_FAILURES = Counter(
    "linksyn_extractor_parse_failures_total", "LLM replies that could not be turned into an annotation.", ["service"]
)
LLM_FAILURES = Counter(
    "linksyn_extractor_llm_failures_total", "LLM requests that failed (timeouts, HTTP errors after retries).", ["service"]
)
REPAIRS = Counter("linksyn_extractor_repairs_total", "Fixes applied to otherwise valid replies.", ["service"])
LATENCY = Histogram(
    "linksyn_extractor_batch_seconds", "Time to annotate one batch (LLM call, parsing, KP normalisation).", ["service"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
KP_VOCABULARY = Gauge("linksyn_extractor_kp_vocabulary", "Distinct canonical KPs known to this process.", ["service"])
KPS_DROPPED = Counter(
    "linksyn_extractor_kps_dropped_total", "Knowledge points the validator dropped (choice labels, numbers, units, "
    "stopwords, single characters, fragments, ungrounded).", ["service", "reason"]
)
KPS_UNGROUNDED = Counter(
    "linksyn_extractor_kps_ungrounded_total", "Kept knowledge points not found in their seed's text (LLM mode).",
    ["service"]
)
