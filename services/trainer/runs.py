"""Training runs and probes as the trainer service sees them: started in the background (a thread of this process,
or a Kubernetes Job), tracked by id, probed when they finish, their ProbeReport handed to a callback (the service
produces it to `linksyn.probes`).

Every start returns at once with the job `pending`; loading, training, probing and talking to the Kubernetes API
happen on the job's own thread, and its status (with the report of a probe) is polled by id. What a request names is
checked first (linksyn.trainer.allowed). One in-process job at a time (one machine, one model in memory), and one
probe at a time whatever the launcher.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from linksyn.common.ids import content_id
from linksyn.trainer import metrics
from linksyn.trainer.allowed import check_benchmark, check_model, check_location
from linksyn.trainer.config import TrainerConfig

log = logging.getLogger(__name__)

ACTIVE = ("pending", "running")


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
    kind: str = "train"
    """'train' (a training run) or 'probe' (a Probe request)."""
    report: Any = None
    """The ProbeReport of a finished probe (of a Probe request, or of the run's checkpoint)."""
    in_process: bool = True
    """Whether the job runs in this process (a probe always does; a run unless the launcher is kubernetes)."""


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
    model, tok = load_probe_model(model_spec, cfg.probe.precision, device, allow_download=cfg.allow_download)
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
    """Starts and tracks training runs and probes; each runs on its own thread and is polled by id."""

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
        self._launched: set[str] = set()
        """Runs whose Job the launcher created (their state is the Job's)."""

    @property
    def _resolve(self) -> bool:
        """Whether request paths are this machine's (symbolic links resolved) or a Job pod's."""
        return self.cfg.launcher == "inprocess"

    def start(self, model: str = "", data: str = "", max_steps: int = 0) -> RunInfo:
        """A training run, `pending` at once; NotAllowed (a ValueError) for what a request may not name,
        RuntimeError when an in-process job is still going."""
        model = check_model(model or self.cfg.model, self.cfg, self._resolve)
        data = check_location(data or self.cfg.dataset, self.cfg, "data", self._resolve)
        if max_steps < 0:
            raise ValueError(f"max_steps must be >= 0 (0 = trainer.train.max_steps), got {max_steps}")
        max_steps = max_steps or self.cfg.train.max_steps
        in_process = self.cfg.launcher == "inprocess"
        info = self._register("train", model, data, max_steps, in_process)
        if in_process:
            self._spawn(self._run_inprocess, info)
        else:
            self._spawn(self._launch, info)
        return info

    def probe(self, checkpoint: str = "", benchmarks: Sequence[str] = ()) -> RunInfo:
        """A probe of `checkpoint` (default trainer.model) on `benchmarks` (default trainer.probe.benchmarks), run in
        this process in the background; its report is in the status once it succeeded."""
        spec = check_model(checkpoint or self.cfg.model, self.cfg, self._resolve)
        chosen = [check_benchmark(b, self.cfg, True) for b in benchmarks] or list(self.cfg.probe.benchmarks)
        if not chosen:
            raise ValueError("no benchmarks: pass some or set trainer.probe.benchmarks")
        info = self._register("probe", spec, ",".join(chosen), 0, True)
        cfg = self.cfg.model_copy(update={"probe": self.cfg.probe.model_copy(update={"benchmarks": chosen})})
        self._spawn(self._probe, info, cfg)
        return info

    def _register(self, kind: str, model: str, data: str, max_steps: int, in_process: bool) -> RunInfo:
        with self._lock:
            active = [r for r in self.runs.values() if r.state in ACTIVE]
            busy = [r for r in active if (in_process and r.in_process) or (kind == "probe" and r.kind == "probe")]
            if busy:
                raise RuntimeError(f"{busy[0].kind} {busy[0].run_id} is still {busy[0].state}; one in-process job "
                                   "(and one probe) at a time")
            run_id = ("probe-" if kind == "probe" else "") + content_id(kind, model, data, max_steps,
                                                                      time.time_ns())[:12]
            info = RunInfo(run_id, model, data, max_steps, kind=kind, in_process=in_process)
            self.runs[run_id] = info
        return info

    def _spawn(self, target: Callable[..., None], info: RunInfo, *args: Any) -> None:
        t = threading.Thread(target=target, args=(info, *args), name=f"{info.kind}-{info.run_id}", daemon=True)
        self._threads.append(t)
        t.start()

    def status(self, run_id: str) -> RunInfo:
        info = self.runs.get(run_id)
        if info is None:
            raise KeyError(f"no run {run_id[:64]!r}; known: {sorted(self.runs)[-20:]}")
        if info.state in ACTIVE and run_id in self._launched:
            info.state = self.launcher.status(run_id)
        return info

    def _launch(self, info: RunInfo) -> None:
        try:
            from linksyn.trainer.launcher import KubernetesLauncher

            self.launcher = self.launcher or KubernetesLauncher(self.cfg.job)
            out = str(Path(self.cfg.out_dir) / info.run_id)
            self.launcher.launch(info.run_id, info.model, info.data, out, info.max_steps)
            info.state = "running"
            self._launched.add(info.run_id)
        except Exception as e:  # reported in the run's status; the service goes on
            log.exception("launching training run %s failed", info.run_id)
            info.state, info.error = "failed", f"launch failed: {type(e).__name__}: {e}"

    def _probe(self, info: RunInfo, cfg: TrainerConfig) -> None:
        try:
            info.state = "running"
            report, _ = probe_checkpoint(info.model, cfg, run_id=info.run_id,
                                         on_result=lambda res: metrics.record_probe(self.service, res))
            info.report, info.state = report, "succeeded"
        except Exception as e:  # reported in the probe's status; the service goes on
            log.exception("probe %s failed", info.run_id)
            info.state, info.error = "failed", f"{type(e).__name__}: {e}"

    def _run_inprocess(self, info: RunInfo) -> None:
        from linksyn.trainer.train import TrainingRun, auto_device, load_trainable

        try:
            info.state = "running"
            device = auto_device(self.cfg.device)
            model, tok = load_trainable(info.model, device, allow_download=self.cfg.allow_download)

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
                info.report = report
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
