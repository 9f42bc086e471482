"""Metrics of the synth stage (prometheus_client default registry, labelled by `service`).

QA/s is `rate(linksyn_synth_qa_total[1m])`; tokens/s likewise from the token counters.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SYNTH_PROMPT_TOKENS = Counter(
    "linksyn_synth_prompt_tokens_total", "Prompt tokens sent to LLMs by synthesis (all rounds).", ["service"]
)
SYNTH_COMPLETION_TOKENS = Counter(
    "linksyn_synth_completion_tokens_total", "Completion tokens received from LLMs by synthesis.", ["service"]
)
SYNTH_QA = Counter("linksyn_synth_qa_total", "Synthesized QA records produced, by mode.", ["service", "mode"])
SYNTH_DROPPED = Counter(
    "linksyn_synth_dropped_total", "Generated items dropped by a filter or check, by reason.", ["service", "reason"]
)
SYNTH_PATHS_FAILED = Counter(
    "linksyn_synth_paths_failed_total", "Paths whose synthesis failed (LLM error, unusable path).", ["service"]
)
SYNTH_BATCH_SECONDS = Histogram(
    "linksyn_synth_batch_seconds",
    "Wall time of synthesizing one batch of paths (every LLM round).",
    ["service"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
