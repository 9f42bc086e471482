"""Metrics of the sampler (prometheus_client default registry, labelled by `service`).

Paths/s is `rate(linksyn_sampler_paths_emitted_total[1m])`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PATHS_EMITTED = Counter("linksyn_sampler_paths_emitted_total", "Paths produced to linksyn.paths.", ["service", "walker"])
KP_COVERAGE = Gauge("linksyn_sampler_kp_coverage_ratio", "Share of the snapshot's KPs on at least one emitted path.", ["service"])
SEED_COVERAGE = Gauge("linksyn_sampler_seed_coverage_ratio", "Share of the snapshot's seeds on at least one emitted path.", ["service"])
TARGET_DISTANCE = Gauge(
    "linksyn_sampler_target_distance_ratio",
    "Total variation between target and realised shares of emitted paths (by start KP class), per attribute.",
    ["service", "attribute"],
)
GRAPH_VERSION = Gauge("linksyn_sampler_graph_version", "Version of the snapshot being walked.", ["service"])
PATHS_LAG = Gauge("linksyn_sampler_paths_lag_records", "Unconsumed paths of the synth group (what just-in-time production tops up).", ["service"])
PROBE_REPORTS = Counter("linksyn_sampler_probe_reports_total", "Probe reports applied to the targets.", ["service"])
SHORT_LINK_PATHS = Counter(
    "linksyn_sampler_short_link_paths_total",
    "Link paths drawn with fewer than 2 seeds, by what became of them: retried (walked again), to_single_seed "
    "(moved to multi_grade/hard), dropped.", ["service", "outcome"],
)
