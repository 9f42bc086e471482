"""Prometheus metrics of the trainer (loss, throughput, probe accuracy)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TRAIN_LOSS = Gauge("linksyn_trainer_loss", "Training loss of the latest logged step", ["run"])
TRAIN_STEP = Gauge("linksyn_trainer_step", "Optimizer steps done in the current run", ["run"])
TRAIN_TOKENS = Counter("linksyn_trainer_tokens_total", "Tokens trained on", ["run"])
TRAIN_TOKENS_PER_S = Gauge("linksyn_trainer_tokens_per_second", "Training throughput over the last log interval", ["run"])
PROBE_ACCURACY = Gauge(
    "linksyn_trainer_probe_accuracy_ratio", "Probe accuracy per bucket", ["benchmark", "discipline", "difficulty"]
)
PROBE_QUESTIONS = Counter("linksyn_trainer_probe_questions_total", "Probe questions scored", ["benchmark"])
QA_TOKENS_SEEN = Counter("linksyn_trainer_qa_tokens_seen_total", "Approximate QA tokens received by the service")
