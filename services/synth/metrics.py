"""Metrics of the synth and sink stages (prometheus_client default registry, labelled by `service`).

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

SINK_RECORDS = Counter(
    "linksyn_sink_records_total", "SynthQA records seen by the sink, by outcome (kept, dropped, replay).",
    ["service", "outcome"],
)
SINK_DROPPED = Counter(
    "linksyn_sink_dropped_total", "Records the sink dropped, by reason (duplicate, near_duplicate, contaminated, "
    "malformed).", ["service", "reason"],
)
SINK_SHARDS = Counter("linksyn_sink_shards_written_total", "Dataset shards written durably.", ["service"])
SINK_RECORDS_WRITTEN = Counter(
    "linksyn_sink_records_written_total", "Records written in durable dataset shards.", ["service"]
)
