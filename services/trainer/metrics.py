"""Prometheus metrics of the trainer (loss, throughput, probe accuracy), labelled by `service` like every service's.

The training loop never touches them: `record_step` is a logging hook (TrainingRun's on_log) the service attaches.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

TRAIN_LOSS = Gauge("linksyn_trainer_loss", "Training loss of the latest logged step", ["service", "run"])
TRAIN_STEP = Gauge("linksyn_trainer_step", "Optimizer steps done in the current run", ["service", "run"])
TRAIN_TOKENS = Counter("linksyn_trainer_tokens_total", "Tokens trained on", ["service", "run"])
TRAIN_TOKENS_PER_S = Gauge(
    "linksyn_trainer_tokens_per_second", "Training throughput over the last log interval", ["service", "run"]
)
PROBE_ACCURACY = Gauge(
    "linksyn_trainer_probe_accuracy_ratio", "Probe accuracy per bucket", ["service", "benchmark", "discipline", "difficulty"]
)
PROBE_QUESTIONS = Counter("linksyn_trainer_probe_questions_total", "Probe questions scored", ["service", "benchmark"])
QA_TOKENS_SEEN = Counter(
    "linksyn_trainer_qa_tokens_seen_total", "Approximate QA tokens received by the service", ["service"]
)


def record_step(service: str, run_id: str, entry: Any) -> None:
    """Export one logged training step (a linksyn.trainer.train.StepLog)."""
    TRAIN_LOSS.labels(service, run_id).set(entry.loss)
    TRAIN_STEP.labels(service, run_id).set(entry.step)
    TRAIN_TOKENS.labels(service, run_id).inc(entry.tokens)
    TRAIN_TOKENS_PER_S.labels(service, run_id).set(entry.tokens_per_s)


def record_probe(service: str, result: Any) -> None:
    """Export one benchmark's probe result (a linksyn.trainer.probes.ProbeResult)."""
    PROBE_QUESTIONS.labels(service, result.benchmark).inc(result.n)
    for (discipline, difficulty), bucket in result.by_bucket.items():
        PROBE_ACCURACY.labels(service, result.benchmark, discipline, str(difficulty)).set(bucket.accuracy)
