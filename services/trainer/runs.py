"""Training runs as the trainer service sees them: started in-process (a thread) or as a Kubernetes Job, tracked by
run id, probed when they finish, their ProbeReport handed to a callback (the service produces it to
`linksyn.probes`)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from linksyn.common.ids import content_id
from linksyn.trainer import metrics
from linksyn.trainer.config import TrainerConfig

log = logging.getLogger(__name__)


@dataclass
class RunInfo:
    run_id: str
    model: str
    data: str
    max_steps: int
    state: str = "pending"
    """pending, running, succeeded, failed."""
    step: int = 0
    loss: float = 0.0
    tokens_per_s: float = 0.0
    checkpoint: str = ""
    error: str = ""
    started_unix: float = field(default_factory=time.time)


def probe_checkpoint(
    model_spec: str, cfg: TrainerConfig, run_id: str, device: Any = None,
    on_result: Callable[[Any], None] | None = None,
) -> Any:
    """Probe a model on the configured benchmarks; a ProbeReport (and the per-benchmark results). `on_result` sees
    each benchmark's ProbeResult as it is scored (the service exports it as metrics)."""
    from linksyn.trainer.probes import (
        load_benchmark,
        load_probe_model,
        parse_benchmark,
        probe_report,
        score,
        subject_groups,
        taxonomy_labeler,
    )
    from linksyn.trainer.train import auto_device

    device = device or auto_device(cfg.device)
    model, tok = load_probe_model(model_spec, cfg.probe.precision, device)
    label_of = taxonomy_labeler()
    results = []
    for spec in cfg.probe.benchmarks:
        qs = load_benchmark(spec, cfg.probe.max_per_subject)
        res = score(model, tok, qs, label_of=label_of, groups=subject_groups(parse_benchmark(spec)[1]),
                    batch_size=cfg.probe.batch_size, max_context_tokens=cfg.probe.max_context_tokens, device=device)
        if on_result is not None:
            on_result(res)
        results.append(res)
    return probe_report(results, run_id, model_spec, cfg.probe.target_accuracy), results


class RunController:
    """Starts and tracks runs; at most one in-process run at a time (one machine, one model in memory)."""

    def __init__(self, cfg: TrainerConfig, on_report: Callable[[Any], None] | None = None,
                 launcher: Any = None, service: str = "trainer") -> None:
        self.cfg = cfg
        self.on_report = on_report
        """Receives each ProbeReport of a finished run (the service publishes it to linksyn.probes)."""
        self.service = service
        self.launcher = launcher
        self.runs: dict[str, RunInfo] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, model: str = "", data: str = "", max_steps: int = 0) -> RunInfo:
        model = model or self.cfg.model
        data = data or self.cfg.dataset
        max_steps = max_steps or self.cfg.train.max_steps
        with self._lock:
            busy = [r for r in self.runs.values() if r.state in ("pending", "running")]
            if busy and self.cfg.launcher == "inprocess":
                raise RuntimeError(f"run {busy[0].run_id} is still {busy[0].state}; one in-process run at a time")
            run_id = content_id(model, data, max_steps, time.time_ns())[:12]
            info = RunInfo(run_id, model, data, max_steps)
            self.runs[run_id] = info
        if self.cfg.launcher == "kubernetes":
            from linksyn.trainer.launcher import KubernetesLauncher

            self.launcher = self.launcher or KubernetesLauncher(self.cfg.job)
            out = str(Path(self.cfg.out_dir) / run_id)
            self.launcher.launch(run_id, model, data, out, max_steps)
            info.state = "running"
            return info
        t = threading.Thread(target=self._run_inprocess, args=(info,), name=f"train-{run_id}", daemon=True)
        self._threads.append(t)
        t.start()
        return info

    def status(self, run_id: str) -> RunInfo:
        info = self.runs.get(run_id)
        if info is None:
            raise KeyError(f"no run {run_id!r}; known: {sorted(self.runs)}")
        if self.cfg.launcher == "kubernetes" and self.launcher and info.state in ("pending", "running"):
            info.state = self.launcher.status(run_id)
        return info

    def _run_inprocess(self, info: RunInfo) -> None:
        from linksyn.trainer.train import TrainingRun, auto_device, load_trainable

        try:
            info.state = "running"
            device = auto_device(self.cfg.device)
            model, tok = load_trainable(info.model, device)

            def on_log(entry: Any) -> None:
                info.step, info.loss, info.tokens_per_s = entry.step, entry.loss, entry.tokens_per_s
                metrics.record_step(self.service, info.run_id, entry)

            run = TrainingRun(model, tok, self.cfg, Path(self.cfg.out_dir) / info.run_id, info.data,
                              device=device, run_id=info.run_id, on_log=on_log)
            result = run.run(stop=self._stop, max_steps=info.max_steps)
            if result.stopped_early:
                info.state, info.error = "failed", "stopped by shutdown before max_steps (resumable)"
                return
            info.checkpoint = str(result.final_dir)
            del model, run
            if self.cfg.probe.benchmarks:
                report, _ = probe_checkpoint(f"hf:{result.final_dir}", self.cfg, info.run_id, device,
                                             on_result=lambda res: metrics.record_probe(self.service, res))
                if self.on_report:
                    self.on_report(report)
            info.state = "succeeded"
        except Exception as e:  # a failed run is reported in its status, the service goes on
            log.exception("training run %s failed", info.run_id)
            info.state, info.error = "failed", f"{type(e).__name__}: {e}"

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
