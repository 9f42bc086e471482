"""The embedded pipeline behind `linksyn run`: every available stage in one process over an InMemoryBus.

Each stage is a service of linksyn.registry, built by its own app and run by the same ServiceHost that runs it in
`linksyn serve` (here without network endpoints): its consumer loop on the in-memory bus, its background loops (the
sampler's producer) on their own threads. What is the pipeline's own: the order of the stages, when a stage has
finished (draining), and the report. A stage whose app module is not in this build is reported as such, never
imitated.

Order and completion: every consumer loop starts at once, so records flow through the stages as they arrive; a
stage's background producers start only once every stage before it has finished, so they see the whole upstream
(the sampler walks the graph's final snapshot). A stage has finished when every stage before it has, its
background producers have returned, and its consumer loop is drained (everything read, done and committed);
its loop is then stopped (its stage's close() runs). The seeds themselves come first: read, validated and
produced to `linksyn.seeds` by the pipeline.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from linksyn import registry
from linksyn.common.bus.base import Bus, TopicPartition
from linksyn.common.config import redact_url_passwords
from linksyn.common.runtime.host import ServiceHost, consumer_group
from linksyn.common.runtime.parts import ServiceParts
from linksyn.config import LinksynConfig
from linksyn.registry import StageUnavailable

log = logging.getLogger(__name__)

STATUS_RAN = "ran"
STATUS_NOT_AVAILABLE = "not available in this build"
STATUS_NOT_SELECTED = "not selected"
STATUS_SKIPPED = "skipped"
STATUS_FAILED = "failed"
STATUS_TIMED_OUT = "timed out"
STATUS_INTERRUPTED = "interrupted"

OUTPUT_NAMES = {"extractor": "seeds annotated", "synth": "QA kept"}
"""What a stage's output records are, in progress lines."""
DEAD_LETTERS_KEPT = 1000
"""Dead letters listed one by one in the report (all are counted)."""
POLL_S = 0.2
PROGRESS_EVERY_S = 15.0
"""How often the stage being waited for says how far it got (records done of its input, tokens/s, what it kept, time
left)."""


class PipelineError(RuntimeError):
    """The pipeline was asked for something it cannot do (unknown stage names...)."""


def select_stages(names: Iterable[str] | None) -> list[str]:
    """Validate a stage selection and put it in pipeline order (None: registry.DEFAULT_STAGES)."""
    if names is None:
        return list(registry.DEFAULT_STAGES)
    try:
        chosen = registry.check_names(names)
    except registry.UnknownService as e:
        raise PipelineError(str(e)) from None
    if not chosen:
        raise PipelineError(f"no stages selected; known stages: {', '.join(registry.SERVICES)}")
    return chosen


def _numbers(totals: Any) -> dict[str, float]:
    """A stage's `totals`, counters only (the sink's `totals` is its dataset card's record, not a mapping)."""
    if not isinstance(totals, Mapping):
        return {}
    # dict() of a dict copies in one C call, safe against a worker thread still counting; then filter.
    return {k: v for k, v in dict(totals).items() if isinstance(v, (int, float))}


def format_duration(seconds: float) -> str:
    """1h02m, 3m05s, 42s."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


@dataclass(frozen=True)
class ProgressSample:
    """A stage's progress at one moment."""

    done: int
    """Input records finished (produced their outputs, or dead-lettered)."""
    total: int
    """Records in the stage's input topics."""
    in_flight: int
    out: int
    tokens: int
    cost: float


@dataclass(frozen=True)
class StageProgress:
    """Rates and time left of a stage, measured from when the pipeline began waiting for it."""

    first: ProgressSample
    since: float

    @classmethod
    def start(cls, sample: ProgressSample, now: float) -> "StageProgress":
        return cls(sample, now)

    def describe(self, s: ProgressSample, now: float, out_name: str) -> str:
        """'12/40 records done (30%), 4 in flight, 31.2 tokens/s, 9 QA kept, about 3m40s left'."""
        elapsed = max(1e-9, now - self.since)
        parts = [f"{s.done}/{s.total} records done" + (f" ({100 * s.done / s.total:.0f}%)" if s.total else "")]
        if s.in_flight:
            parts.append(f"{s.in_flight} in flight")
        if s.tokens:
            parts.append(f"{(s.tokens - self.first.tokens) / elapsed:.1f} tokens/s")
        parts.append(f"{s.out} {out_name}")
        if s.cost:
            parts.append(f"cost {s.cost:.4f}")
        rate = (s.done - self.first.done) / elapsed
        left = s.total - s.done
        if left <= 0:
            parts.append("finishing")
        elif rate > 0:
            parts.append(f"about {format_duration(left / rate)} left")
        else:
            parts.append("time left unknown until a record finishes")
        return ", ".join(parts)


@dataclass
class StageRun:
    """One stage's part in a run, as the report shows it."""

    name: str
    status: str = STATUS_NOT_SELECTED
    reason: str = ""
    parts: ServiceParts | None = None
    host: ServiceHost | None = None
    build_s: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    waited_from: float = 0.0
    """When the pipeline began waiting for this stage (every stage before it had finished)."""
    counts: dict[str, float] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)
    """The stage's own running totals (a stage's `totals` mapping of counters: the synth's drops by reason, tokens
    spent, cost and tokens per model)."""
    details: dict[str, Any] = field(default_factory=dict)
    """What the stage's Stats RPC reports as its details at the end of the run (the sampler's coverage and shares
    against the targets, the graph's size, the models used...), as JSON."""
    stop_reason: str = ""
    """Why the stage's producers stopped (the sampler: its path limit, or the budget)."""
    done: bool = False

    def report(self, t0: float) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.parts is not None:
            out["build_s"] = round(self.build_s, 3)
            out["consumes"] = list(self.parts.stage.input_topics) if self.parts.stage is not None else []
            out["background_loops"] = len(self.parts.background)
        if self.finished_at and self.started_at:  # a stage built but never started (skipped) has no times
            out["finished_after_s"] = round(self.finished_at - t0, 3)
            out["wall_s"] = round(self.finished_at - self.started_at, 3)
            if self.waited_from:
                out["active_s"] = round(self.finished_at - self.waited_from, 3)
        if self.stop_reason:
            out["stop_reason"] = self.stop_reason
        if self.counts:
            out["counts"] = {k: (int(v) if float(v).is_integer() else v) for k, v in sorted(self.counts.items())}
        if self.totals:
            out["totals"] = {k: (int(v) if float(v).is_integer() else v) for k, v in sorted(self.totals.items())}
        if self.details:
            out["details"] = self.details
        errors = self.host.background_errors() if self.host is not None else []
        if errors:
            out["background_errors"] = errors
        return out

    @property
    def loop(self) -> Any:
        """The stage's consumer loop (None for a stage that consumes nothing, or before the run started)."""
        return self.host.loop if self.host is not None else None


@dataclass
class SeedInput:
    """What the pipeline feeds in: an iterable of Seed records plus where rejected rows are collected.

    `reader` is a linksyn.common.seeds.SeedReader (or anything with the same `rejected`, `rejected_count` and
    `sources` attributes)."""

    reader: Any
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda it: it
    """Wraps the seed iterator (a tqdm bar in the CLI)."""


class Pipeline:
    """One embedded run: build, feed seeds, wait stage by stage, collect the report."""

    def __init__(
        self,
        cfg: LinksynConfig,
        bus: Bus,
        out_dir: Path,
        stages: Sequence[str] | None = None,
        *,
        timeout_s: float | None = None,
        echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    ) -> None:
        self.cfg = cfg
        self.bus = bus
        self.out_dir = Path(out_dir)
        self.selected = select_stages(stages)
        self.timeout_s = timeout_s
        self.echo = echo
        self.runs: dict[str, StageRun] = {name: StageRun(name) for name in registry.SERVICES}
        self._stop = threading.Event()
        self._probe_consumer: Any = None
        self._t0 = time.monotonic()
        self.seeds_in = 0
        self.status = "ok"
        self.error = ""

    # ---- phases ----------------------------------------------------------------------------------------------

    def build(self) -> bool:
        """Import and build every selected stage. False (with the stage marked failed) if one failed."""
        self.bus.ensure_topics(self.cfg.bus.topics.all_partitions())
        broken: str | None = None
        for name in registry.SERVICES:
            run = self.runs[name]
            if name not in self.selected:
                continue
            if broken is not None:
                run.status, run.reason = STATUS_SKIPPED, f"stage {broken!r} failed to build"
                continue
            try:
                module = registry.import_app(name)
            except StageUnavailable as e:
                run.status, run.reason = STATUS_NOT_AVAILABLE, str(e)
                continue
            except Exception as e:  # noqa: BLE001 - reported with the stage, then the run stops
                module_name = registry.SERVICES[name].app
                run.status, run.reason = STATUS_FAILED, f"import {module_name} failed: {type(e).__name__}: {e}"
                broken = name
                continue
            t = time.monotonic()
            try:
                run.parts = module.build(self.cfg.section(name), self.cfg, self.bus)
            except Exception as e:  # noqa: BLE001
                run.status, run.reason = STATUS_FAILED, f"build failed: {type(e).__name__}: {e}"
                broken = name
                log.exception("building stage %s failed", name)
                continue
            run.build_s = time.monotonic() - t
            # Hosted from now on: whatever happens later, shutdown stops it and runs its close().
            run.host = ServiceHost(run.parts, self.cfg, self.bus, endpoints=False)
            run.status = STATUS_RAN
        # A stage downstream of a selected stage that cannot run gets no input: say so instead of running it dry.
        missing: str | None = None
        for name in self.selected:
            run = self.runs[name]
            if run.status != STATUS_RAN:
                missing = missing or name
            elif missing is not None:
                run.status = STATUS_SKIPPED
                run.reason = f"no input: upstream stage {missing!r} {self.runs[missing].status}"
        if broken is not None:
            for run in self.runs.values():
                if run.status == STATUS_RAN:
                    run.status, run.reason = STATUS_SKIPPED, f"stage {broken!r} failed to build"
            self.status, self.error = "failed", f"stage {broken!r}: {self.runs[broken].reason}"
            return False
        return True

    def start(self) -> None:
        """Host every stage that runs: its consumer loop starts at once (idle until records arrive); its background
        loops wait for wait() to start them in order."""
        self._t0 = time.monotonic()
        for run in self._running():
            run.started_at = time.monotonic()
            assert run.host is not None
            run.host.start(background=False)

    def feed(self, seeds: SeedInput) -> int:
        """Produce every seed to the seeds topic (keyed by seed id). Returns how many were produced."""
        topic = self.cfg.bus.topics.seeds
        n = 0
        for seed in seeds.progress(iter(seeds.reader)):
            if self._stop.is_set():
                break
            self.bus.produce(topic, seed.SerializeToString(), key=seed.id.encode("utf-8"))
            n += 1
            self.seeds_in = n
        self.bus.flush()
        return n

    def wait(self) -> bool:
        """Wait for the stages in order (see the module docstring). False on failure, timeout or interrupt."""
        deadline = None if not self.timeout_s else self._t0 + self.timeout_s
        upstream_ok = True
        for run in self._running():
            if not upstream_ok:
                break
            if run.host is not None:
                run.host.start_background()
            run.waited_from = time.monotonic()
            progress = StageProgress.start(self._progress_sample(run), run.waited_from)
            next_note = time.monotonic() + PROGRESS_EVERY_S
            while not self._finished(run):
                if time.monotonic() >= next_note:
                    next_note = time.monotonic() + PROGRESS_EVERY_S
                    self._note_progress(run, progress)
                if self._stop.is_set():
                    self._mark_unfinished(STATUS_INTERRUPTED, "interrupted")
                    return False
                failure = run.host.failure() if run.host is not None else None
                if failure:
                    self._fail(run, failure)
                    return False
                if deadline is not None and time.monotonic() > deadline:
                    self._mark_unfinished(STATUS_TIMED_OUT, f"still running after --timeout {self.timeout_s:g}s")
                    return False
                time.sleep(POLL_S)
            self._close_stage(run)
            upstream_ok = run.status == STATUS_RAN
            ended = "finished" if run.status == STATUS_RAN else run.status
            self.echo(f"{run.name}: {ended} after {run.finished_at - run.started_at:.1f}s"
                      + (f": {run.stop_reason}" if run.stop_reason else ""))
        return upstream_ok

    def _progress_sample(self, run: StageRun) -> ProgressSample:
        """Where the stage is now: input records finished and in all, tokens spent, outputs, cost."""
        c = run.loop.stats() if run.loop is not None else {}
        totals = _numbers(getattr(run.parts.stage, "totals", None) if run.parts is not None else None)
        return ProgressSample(
            done=int(c.get("records_in", 0) - c.get("in_flight", 0)),
            total=self._input_records(run) if run.loop is not None else 0,
            in_flight=int(c.get("in_flight", 0)),
            out=int(c.get("records_out", 0)),
            tokens=int(totals.get("prompt_tokens", 0) + totals.get("completion_tokens", 0)),
            cost=float(totals.get("cost", 0.0)),
        )

    def _note_progress(self, run: StageRun, progress: "StageProgress") -> None:
        now = time.monotonic()
        line = f"{run.name}: running for {now - run.started_at:.0f}s"
        if run.loop is not None:
            line += ", " + progress.describe(self._progress_sample(run), now, self._output_name(run))
        producing = run.host.background_running() if run.host is not None else 0
        if producing:
            line += f", {producing} background loop(s) producing"
        self.echo(line)

    @staticmethod
    def _output_name(run: StageRun) -> str:
        """What a stage's outputs are, in a progress line."""
        return OUTPUT_NAMES.get(run.name, "records out")

    def interrupt(self) -> None:
        """Ask feed() and wait() to give up (Ctrl-C)."""
        self._stop.set()

    def shutdown(self) -> None:
        """Stop whatever still runs and release every stage (idempotent)."""
        self._stop.set()
        for run in self.runs.values():
            if run.parts is not None and not run.done:
                self._close_stage(run)
        if self._probe_consumer is not None:
            self._probe_consumer.close()
            self._probe_consumer = None

    # ---- report ----------------------------------------------------------------------------------------------

    def report(self, seeds: SeedInput, **extra: Any) -> dict[str, Any]:
        reader = seeds.reader
        dead = self._dead_letters()
        ran = [n for n in self.selected if self.runs[n].status == STATUS_RAN]
        topics = self._topic_sizes()
        names = self.cfg.bus.topics
        report: dict[str, Any] = {
            "status": self.status,
            **({"error": self.error} if self.error else {}),
            **extra,
            "seeds_in": self.seeds_in,
            "seeds_rejected": {
                "count": reader.rejected_count,
                "rows": [r.to_dict() for r in reader.rejected],
                "listed": len(reader.rejected),
            },
            "seed_sources": [{"path": str(s.path), "format": s.format} for s in reader.sources],
            # Records each stage put on its output topic (the same numbers as `topics`, by what they are).
            "annotated": topics.get(names.seed_kps, 0),
            "paths": topics.get(names.paths, 0),
            "synthesized": topics.get(names.synth_qa, 0),
            "dead_letters": dead,
            "stages_selected": self.selected,
            "stages_ran": ran,
            "stages_not_available": [n for n, r in self.runs.items() if r.status == STATUS_NOT_AVAILABLE],
            "stop_reason": self._stop_reason(),
            "stages": {n: r.report(self._t0) for n, r in self.runs.items()},
            "topics": topics,
            "wall_s": round(time.monotonic() - self._t0, 3),
        }
        probes = self._probe_reports()
        if probes:
            report["probes"] = probes
        stuck = self._threads_left_running()
        if stuck:
            report["threads_left_running"] = stuck
        dataset = self.out_dir / "dataset"
        if dataset.exists():
            report["dataset"] = str(dataset)
        return report

    def _stop_reason(self) -> str:
        """Why the run ended: what failed, the budget, or how its producers finished."""
        if self.status != "ok":
            return self.error or self.status
        reasons = [f"{r.name}: {r.stop_reason}" for r in self._running() if r.stop_reason]
        budget = [x for x in reasons if "budget reached" in x]
        return (budget or reasons or ["every stage finished its input"])[0]

    # ---- internals -------------------------------------------------------------------------------------------

    def _running(self) -> list[StageRun]:
        return [self.runs[n] for n in self.selected if self.runs[n].status == STATUS_RAN]

    def _finished(self, run: StageRun) -> bool:
        if run.host is not None and (run.host.background_running() or run.host.background_errors()):
            return False
        if run.loop is None:
            return True
        # Drained (read, done and committed) is the usual sign. A stage that commits only at its checkpoints
        # (the graph publishes a snapshot every graph.snapshot_every_s) is also finished once it has read every
        # record of its inputs and has nothing in flight: stopping it runs its close(), which makes its state
        # durable and lets the final commit through (checked after the stop, see _close_stage).
        read = run.loop.stats().get("records_in", 0)
        if read >= self._input_records(run) and run.loop.idle():
            return True
        return bool(run.loop.drained(timeout=1.0))

    def _input_records(self, run: StageRun) -> int:
        """Records in the stage's input topics now (the in-memory bus starts empty, so all of them are input)."""
        assert run.parts is not None and run.parts.stage is not None
        tps = [TopicPartition(t, p) for t in run.parts.stage.input_topics for p in range(self.bus.partitions_for(t))]
        probe = self._probe()
        return sum(probe.end_offsets(tps).values())

    def _uncommitted(self, run: StageRun) -> int:
        """After the stage's loop stopped: records of its inputs its consumer group has not committed."""
        assert run.parts is not None and run.parts.stage is not None
        topics = list(run.parts.stage.input_topics)
        tps = [TopicPartition(t, p) for t in topics for p in range(self.bus.partitions_for(t))]
        member = self.bus.consumer(consumer_group(run.name), topics)
        try:
            ends = member.end_offsets(tps)
            return sum(max(0, end - (member.committed(tp) or 0)) for tp, end in ends.items())
        finally:
            member.close()

    def _probe(self) -> Any:
        """A consumer used only for log-end offsets (it never polls, so it is assigned nothing)."""
        if self._probe_consumer is None:
            self._probe_consumer = self.bus.consumer("linksyn-run-probe", [self.cfg.bus.topics.dead_letter])
        return self._probe_consumer

    def _close_stage(self, run: StageRun) -> None:
        if run.done:
            return
        run.done = True
        if run.host is not None and not run.host.stop():
            # The run's outcome stands; what did not stop cleanly is reported with the stage.
            run.reason = "; ".join([run.reason, *run.host.problems] if run.reason else run.host.problems)
        if run.loop is not None:
            run.counts = dict(run.loop.stats())
            for key in ("in_flight", "lag"):
                run.counts.pop(key, None)
            if run.loop.finished():
                left = self._uncommitted(run)
                if left:
                    log.warning("%s stopped with %d record(s) of its inputs uncommitted", run.name, left)
                    run.counts["uncommitted_after_stop"] = left
        stage_totals = getattr(run.parts.stage, "totals", None) if run.parts is not None else None
        run.totals = _numbers(stage_totals)
        run.details = _stats_details(run.parts) if run.parts is not None else {}
        if run.parts is not None:
            run.stop_reason = "; ".join(r for r in (getattr(b, "stop_reason", "") for b in run.parts.background) if r)
        run.finished_at = time.monotonic()

    def _fail(self, run: StageRun, reason: str) -> None:
        run.status, run.reason = STATUS_FAILED, reason
        self.status, self.error = "failed", f"stage {run.name!r}: {reason}"
        self._mark_unfinished(STATUS_SKIPPED, f"stage {run.name!r} failed", mark_pipeline=False)

    def _mark_unfinished(self, status: str, reason: str, mark_pipeline: bool = True) -> None:
        if mark_pipeline:
            self.status, self.error = status, reason
        for run in self._running():
            if not run.done:
                run.status, run.reason = status, reason
        for run in self.runs.values():
            if run.status in (STATUS_SKIPPED, STATUS_TIMED_OUT, STATUS_INTERRUPTED) and not run.reason:
                run.reason = reason

    def _threads_left_running(self) -> list[str]:
        """Threads of the stages still alive after shutdown (a batch stuck in native code past the timeout)."""
        prefixes = tuple(f"{name}-" for name in self.selected)
        return sorted(t.name for t in threading.enumerate() if t.is_alive() and t.name.startswith(prefixes))

    def _topic_sizes(self) -> dict[str, int]:
        """Records in each pipeline topic at the end (sum of the partitions' log-end offsets)."""
        topics = self.cfg.bus.topics.all_partitions()
        tps = [TopicPartition(t, p) for t in topics for p in range(self.bus.partitions_for(t))]
        probe = self.bus.consumer("linksyn-run-report", [self.cfg.bus.topics.dead_letter])
        try:
            ends = probe.end_offsets(tps)
        finally:
            probe.close()
        sizes: Counter[str] = Counter()
        for tp, end in ends.items():
            sizes[tp.topic] += end
        return {t: sizes[t] for t in topics}

    def _records(self, topic: str, group: str) -> Iterator[bytes]:
        """Every record value of `topic` (as far as it can be read in 30 s), from a consumer group of its own."""
        tps = [TopicPartition(topic, p) for p in range(self.bus.partitions_for(topic))]
        consumer = self.bus.consumer(group, [topic])
        try:
            total = sum(consumer.end_offsets(tps).values())
            seen = 0
            deadline = time.monotonic() + 30.0
            while seen < total and time.monotonic() < deadline:
                for m in consumer.poll(max_records=500, timeout_s=0.5):
                    seen += 1
                    yield m.value
        finally:
            consumer.close()

    def _dead_letters(self) -> dict[str, Any]:
        """Every dead letter of the run: counted by service and error, the first DEAD_LETTERS_KEPT listed."""
        from linksyn.v1.records_pb2 import DeadLetter

        records: list[dict[str, Any]] = []
        by_service: Counter[str] = Counter()
        by_error: Counter[str] = Counter()
        for value in self._records(self.cfg.bus.topics.dead_letter, "linksyn-run-dead-letters"):
            dl = DeadLetter()
            dl.ParseFromString(value)
            by_service[dl.service] += 1
            by_error[dl.error.split(":", 1)[0]] += 1
            if len(records) < DEAD_LETTERS_KEPT:
                records.append(
                    {
                        "service": dl.service,
                        "topic": dl.topic,
                        "partition": dl.partition,
                        "offset": dl.offset,
                        "attempts": dl.attempts,
                        "error": dl.error,
                    }
                )
        return {
            "count": sum(by_service.values()),
            "by_service": dict(by_service),
            "by_error_type": dict(by_error),
            "records": records,
        }

    def _probe_reports(self) -> list[dict[str, Any]]:
        """The probe reports of the run (the trainer's, on linksyn.probes), oldest first."""
        from google.protobuf.message import DecodeError
        from linksyn.v1.records_pb2 import ProbeReport

        reports = []
        for value in self._records(self.cfg.bus.topics.probes, "linksyn-run-probes"):
            r = ProbeReport()
            try:
                r.ParseFromString(value)
            except DecodeError:  # a malformed record there is the sampler's to dead-letter, not the report's
                continue
            reports.append(
                {
                    "run_id": r.run_id,
                    "checkpoint": r.checkpoint,
                    "benchmarks": list(r.benchmarks),
                    "created_unix_ms": r.created_unix_ms,
                    "buckets": [
                        {"discipline": b.discipline, "difficulty": int(b.difficulty), "n": b.n,
                         "accuracy": b.accuracy, "deficit": b.deficit}
                        for b in r.buckets
                    ],
                }
            )
        return sorted(reports, key=lambda r: r["created_unix_ms"])


def _stats_details(parts: ServiceParts) -> dict[str, Any]:
    """The details every servicer of the stage gives its Stats RPC, merged, as plain JSON; a failure is reported."""
    details: dict[str, Any] = {}
    for _, servicer in parts.servicers:
        if not callable(getattr(servicer, "stats_details", None)):
            continue
        try:
            details.update(json.loads(json.dumps(dict(servicer.stats_details()), default=str)))
        except Exception as e:  # noqa: BLE001 - the report says so; the run's outcome stands
            details["details_error"] = f"{type(e).__name__}: {e}"
    return details


EMBEDDED_PATHS_PER_SEED = 2
"""Paths per seed `linksyn run` emits when the configuration sets no limit of its own."""

RUN_OUTPUTS: tuple[str, ...] = ("report.json", "report.html", "graph", "dataset", "trainer", "sampler-state.json")
"""What a run writes under its output folder (see embedded_config); --overwrite removes exactly these."""


class OutputExistsError(PipelineError):
    """The output folder holds a previous run's state, which a new in-memory run must not resume from."""


def embedded_config(cfg: LinksynConfig, out_dir: Path) -> LinksynConfig:
    """A copy of `cfg` for the embedded run writing under `out_dir`.

    The bus is the in-memory one. The run is finite: unless the configuration bounds the sampler (sampler.max_paths
    or sampler.paths_per_seed), it emits EMBEDDED_PATHS_PER_SEED paths per seed of the graph it walks (at most
    sampler.paths_per_seed_cap) and stops. Where a stage keeps state or output in a folder and the configuration
    does not name one explicitly, it goes under `out_dir`: graph snapshots in graph/ (which the sampler reads), the
    dataset in dataset/, trainer runs in trainer/ (training on that dataset), sampler counters in sampler-state.json.
    """
    cfg = cfg.model_copy(deep=True)
    cfg.bus.kind = "memory"
    out = Path(out_dir)
    if "snapshot_url" not in cfg.graph.model_fields_set:
        cfg.graph.snapshot_url = str(out / "graph")
    if not cfg.sampler.max_paths and not cfg.sampler.paths_per_seed:
        cfg.sampler.paths_per_seed = EMBEDDED_PATHS_PER_SEED
    if "output_dir" not in cfg.sink.model_fields_set:
        cfg.sink.output_dir = str(out / "dataset")
    if "dataset" not in cfg.trainer.model_fields_set:
        cfg.trainer.dataset = str(out / "dataset")
    if "out_dir" not in cfg.trainer.model_fields_set:
        cfg.trainer.out_dir = str(out / "trainer")
    if "state_path" not in cfg.sampler.model_fields_set:
        cfg.sampler.state_path = str(out / "sampler-state.json")
    return cfg


def previous_run_outputs(out_dir: Path) -> list[Path]:
    """The outputs of an earlier run present in `out_dir`."""
    return [Path(out_dir) / name for name in RUN_OUTPUTS if (Path(out_dir) / name).exists()]


def clear_previous_run(out_dir: Path) -> None:
    """Remove what an earlier run wrote to `out_dir` (only the paths in RUN_OUTPUTS; anything else stays)."""
    import shutil

    for path in previous_run_outputs(out_dir):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def run_pipeline(
    cfg: LinksynConfig,
    seeds: SeedInput,
    out_dir: Path,
    stages: Sequence[str] | None = None,
    *,
    timeout_s: float | None = None,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    extra_report: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the embedded pipeline and write `out_dir/report.json`; returns the report.

    The configuration is adapted by `embedded_config` (in-memory bus, state and outputs under `out_dir`).
    OutputExistsError if `out_dir` holds an earlier run, unless `overwrite` (which removes that run's outputs).
    """
    from linksyn.common.bus.memory import InMemoryBus

    out_dir = Path(out_dir)
    existing = previous_run_outputs(out_dir)
    if existing and not overwrite:
        raise OutputExistsError(
            f"{out_dir} holds a previous run ({', '.join(p.name for p in existing)}); a new run would resume from its "
            "state: choose another --out, or pass --overwrite to replace it"
        )
    clear_previous_run(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = embedded_config(cfg, out_dir)
    bus = InMemoryBus(default_partitions=cfg.bus.topics.partitions)
    pipeline = Pipeline(cfg, bus, out_dir, stages, timeout_s=timeout_s, echo=echo)
    try:
        try:
            if pipeline.build():
                pipeline.start()
                pipeline.feed(seeds)
                pipeline.wait()
        except KeyboardInterrupt:
            pipeline.interrupt()
            pipeline._mark_unfinished(STATUS_INTERRUPTED, "interrupted (Ctrl-C)")
        except Exception as e:  # noqa: BLE001 - the report says what broke; the stages are still shut down
            log.exception("the embedded pipeline failed")
            pipeline._mark_unfinished(STATUS_FAILED, f"pipeline error: {type(e).__name__}: {e}")
        finally:
            pipeline.shutdown()
        report = pipeline.report(seeds, **(extra_report or {}))
    finally:
        bus.close()
    path = out_dir / "report.json"
    tmp = path.with_suffix(".json.tmp")
    # Errors quote what failed (a model spec, a URL): whatever a stage put there, no URL password is written.
    text = redact_url_passwords(json.dumps(report, indent=2, ensure_ascii=False))
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)
    return json.loads(text)


def project(report: Mapping[str, Any], seeds_total: int, paths: int) -> dict[str, Any]:
    """Tokens, cost and time of extracting `seeds_total` seeds and synthesizing `paths` paths, projected from the
    report of a sample run (each stage's spend and active time per record it read, times the records to come).

    Time assumes the same throughput as the sample (same machine, models and concurrency) and the two stages one
    after the other; in a real run they overlap, and a larger batch may keep an adaptive endpoint busier."""
    stages = report.get("stages", {})
    out: dict[str, Any] = {"sample": {}, "per_record": {}, "projected": {}}
    counts = {"extractor": seeds_total, "synth": paths}
    total = {"prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0, "seconds": 0.0}
    for name, n in counts.items():
        stage = stages.get(name) or {}
        read = int((stage.get("counts") or {}).get("records_in", 0))
        if stage.get("status") != STATUS_RAN or not read:
            out["sample"][name] = {"records": read, "note": f"{name} {stage.get('status', 'did not run')}: no figures"}
            continue
        t = stage.get("totals") or {}
        measured = {"prompt_tokens": t.get("prompt_tokens", 0), "completion_tokens": t.get("completion_tokens", 0),
                    "cost": t.get("cost", 0.0), "seconds": stage.get("active_s", stage.get("wall_s", 0.0))}
        out["sample"][name] = {"records": read, **measured}
        per = {k: v / read for k, v in measured.items()}
        out["per_record"][name] = {k: round(v, 6) for k, v in per.items()}
        projected = {k: v * n for k, v in per.items()}
        out["projected"][name] = {"records": n, **{k: round(v, 4) for k, v in projected.items()}}
        for k in total:
            total[k] += projected[k]
    out["projected"]["total"] = {k: round(v, 4) for k, v in total.items()}
    return out
