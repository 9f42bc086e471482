"""A linksyn cluster of real OS processes for system tests: a Tansu broker of its own, every service as
`linksyn serve <name>` from one YAML config, seeds pushed with `linksyn push`, health and counters read with
`linksyn status` (its `target_status`, or the CLI itself with --json).

Each cluster has its own broker (started here, not the session one): consumer groups are named after the services
(`linksyn.<service>`), so two clusters on one broker would share groups, and the broker-pause fault test stops the
broker process. Every process started here is killed in `close()`, also when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml
from linksyn.common.bus.kafka import KafkaBus
from linksyn.common.config import KafkaConfig
from linksyn.v1 import records_pb2

from tests.tooling.ports import free_loopback_port
from tests.tooling.tansu import TansuBroker

REPO = Path(__file__).resolve().parents[2]
SEEDS_FILE = REPO / "examples" / "seeds.jsonl"
"""42 committed seeds in 9 disciplines, English and Chinese."""
LINKSYN = str(Path(sys.executable).with_name("linksyn"))

PIPELINE: tuple[str, ...] = ("extractor", "graph", "sampler", "synth", "sink")
"""The services of a cluster, in pipeline order."""
INPUT_TOPIC: dict[str, str] = {
    "extractor": "seeds", "graph": "seed_kps", "synth": "paths", "sink": "synth_qa", "sampler": "probes",
}
"""Service -> the TopicsConfig field it consumes."""

GROUP_SETTINGS: dict[str, Any] = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000,
                                  "max_poll_interval_ms": 60000, "request_timeout_ms": 10000}
"""Fast group timings (a member killed with -9 is noticed after 6 s), as tests/conftest.py FAST_GROUP_SETTINGS, with
a poll interval long enough for an LLM batch and a request timeout that a 10-20 s broker pause outlasts."""


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, nested mappings merged key by key."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def cluster_config(root: Path, bootstrap: str, llm_spec: str, max_paths: int) -> dict[str, Any]:
    """The YAML config every service of a cluster reads (ports come per process from the environment)."""
    return {
        "bus": {
            "kind": "kafka",
            "kafka": {"bootstrap": bootstrap, **GROUP_SETTINGS},
            "topics": {"partitions": 3},
        },
        "runtime": {"batch_size": 4, "batch_wait_s": 0.05, "workers": 2, "commit_interval_s": 0.3,
                    "retry": {"max_attempts": 3, "backoff_initial_s": 0.2, "backoff_max_s": 2.0},
                    "shutdown_timeout_s": 20},
        "server": {"host": "127.0.0.1"},
        "extractor": {"mode": "keyphrase"},
        "graph": {"snapshot_url": str(root / "graph"), "snapshot_every_seeds": 10, "snapshot_every_s": 1.0},
        "sampler": {"state_path": str(root / "sampler-state.npz"), "max_paths": max_paths, "lag_target": 3,
                    "batch_size": 3, "lag_poll_s": 0.2, "refresh_s": 1.0, "persist_every": 1,
                    "mode_mix": {"link": 1.0}},
        "synth": {
            "model": llm_spec,
            "max_tokens": 160,
            # SmolLM2-135M often echoes a seed; the copy filter has its own tests, here delivery is under test.
            "max_copy_overlap": 1.0,
            "llm": {"request_timeout_s": 60, "retry": {"max_attempts": 3, "backoff_initial_s": 0.5, "backoff_max_s": 4}},
        },
        "sink": {"output_dir": str(root / "dataset"), "flush_interval_s": 1.0, "formats": ["jsonl", "parquet"]},
    }


@dataclass
class ServiceProcess:
    """One `linksyn serve NAME` process (restarts reuse its ports and append to its log)."""

    name: str
    grpc_port: int
    metrics_port: int
    log: Path
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


@dataclass
class Cluster:
    """Broker + services + the test's view of topics, groups, dataset and dead letters. Use as a context manager."""

    root: Path
    llm_spec: str
    max_paths: int = 12
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Merged into the config (nested keys merged), e.g. {"synth": {"llm": {"request_timeout_s": 5}}}."""
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    broker: TansuBroker | None = None
    bus: KafkaBus | None = None
    config_path: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent in start/push/wait_finished (summed over calls), printed by the tests for the record."""

    def _timed(self, what: str, t0: float) -> None:
        self.timings[what] = round(self.timings.get(what, 0.0) + time.monotonic() - t0, 1)

    # ---- lifecycle ---------------------------------------------------------------------------------------------

    def __enter__(self) -> "Cluster":
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.broker = TansuBroker().start()
            self.config = merge(cluster_config(self.root, self.broker.bootstrap, self.llm_spec, self.max_paths),
                                self.overrides)
            self.config_path = self.root / "linksyn.yaml"
            self.config_path.write_text(yaml.safe_dump(self.config))
            self.bus = KafkaBus(KafkaConfig(**self.config["bus"]["kafka"]), client_id="system-test")
            from linksyn.config import load_config

            self.bus.ensure_topics(load_config(self.config_path).bus.topics.all_partitions())
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Kill every service still running, close the test's bus, stop the broker. Never raises."""
        for svc in self.services.values():
            if svc.alive():
                assert svc.proc is not None
                svc.proc.kill()
                svc.proc.wait(10)
        if self.broker is not None and self.broker.pid is not None:
            try:
                os.kill(self.broker.pid, signal.SIGCONT)  # a paused broker cannot be stopped with SIGTERM
            except ProcessLookupError:
                pass
        if self.bus is not None:
            try:
                self.bus.close()
            except Exception:  # noqa: BLE001 - cleanup must go on (the broker may be gone already)
                pass
            self.bus = None
        if self.broker is not None:
            self.broker.stop()

    @property
    def topics(self) -> dict[str, str]:
        from linksyn.config import load_config

        t = load_config(self.config_path).bus.topics
        return {k: getattr(t, k) for k in ("seeds", "seed_kps", "paths", "synth_qa", "probes", "dead_letter")}

    # ---- services ----------------------------------------------------------------------------------------------

    def start(self, *names: str, wait: bool = True, env: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Start services (all of PIPELINE when none named); with `wait`, until each answers health SERVING.
        `env`: service -> extra environment of this start (LINKSYN_* overrides for that process alone)."""
        names = names or PIPELINE
        for name in names:
            svc = self.services.get(name)
            if svc is None:
                svc = ServiceProcess(name, free_loopback_port(), free_loopback_port(), self.root / f"{name}.log")
                self.services[name] = svc
                if name == "graph" and "graph_target" not in self.config["sampler"]:
                    self._set_config(sampler={"graph_target": svc.target})
            if svc.alive():
                raise RuntimeError(f"{name} is already running (pid {svc.proc.pid})")
            env = {k: v for k, v in os.environ.items() if not k.startswith("LINKSYN_")}
            env |= {
                "LINKSYN_SERVER__GRPC_PORT": str(svc.grpc_port),
                "LINKSYN_SERVER__METRICS_PORT": str(svc.metrics_port),
                "OMP_NUM_THREADS": "1",
                "TOKENIZERS_PARALLELISM": "false",
            } | dict((env or {}).get(name, {}))
            with open(svc.log, "ab") as log:
                log.write(f"\n==== start {svc.starts + 1} of {name} ====\n".encode())
                log.flush()
                svc.proc = subprocess.Popen(
                    [LINKSYN, "serve", name, "--config", str(self.config_path)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                )
            svc.starts += 1
        if wait:
            t0 = time.monotonic()
            for name in names:
                self.wait_serving(name)
            self._timed("start", t0)

    def _set_config(self, **sections: Any) -> None:
        self.config = merge(self.config, sections)
        assert self.config_path is not None
        self.config_path.write_text(yaml.safe_dump(self.config))

    def wait_serving(self, name: str, timeout: float = 180) -> None:
        self.wait(lambda: self.status_row(name)["health"] == "SERVING", timeout, f"{name} SERVING")

    def kill9(self, name: str) -> None:
        """SIGKILL: no shutdown code runs (no commit, no flush, no state write)."""
        svc = self.services[name]
        assert svc.proc is not None and svc.alive(), f"{name} is not running"
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait(10)

    def terminate(self, name: str, timeout: float = 60) -> int:
        """SIGTERM and wait: the clean shutdown; returns the exit code."""
        svc = self.services[name]
        assert svc.proc is not None
        svc.proc.send_signal(signal.SIGTERM)
        return svc.proc.wait(timeout)

    def check_alive(self) -> None:
        """Fail with the service's log if one of them exited on its own."""
        for svc in self.services.values():
            if svc.proc is not None and svc.proc.poll() is not None and svc.proc.returncode not in (-9,):
                raise AssertionError(f"{svc.name} exited with {svc.proc.returncode}:\n{svc.log_tail()}")

    def logs(self) -> str:
        return "\n".join(f"---- {s.name} ----\n{s.log_tail(1500)}" for s in self.services.values())

    # ---- observation -------------------------------------------------------------------------------------------

    def status_row(self, name: str) -> dict[str, Any]:
        """`linksyn status` row of one service (the CLI's own target_status)."""
        from linksyn.cli import target_status

        return target_status(self.services[name].target, None, None, timeout=3.0)

    def details(self, name: str) -> dict[str, Any]:
        return self.status_row(name).get("details") or {}

    def status_cli(self) -> tuple[int, list[dict[str, Any]]]:
        """`linksyn status --json` over every started service: (exit code, rows)."""
        args = [LINKSYN, "status", "--json", "--timeout", "10"]
        for svc in self.services.values():
            args += ["--target", svc.target]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
        return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else []

    def wait(self, cond: Callable[[], bool], timeout: float, what: str, every: float = 0.25) -> None:
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if cond():
                    return
                last = None
            except Exception as e:  # noqa: BLE001 - a service restarting or the broker paused: ask again
                last = e
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last error: {last!r})\n{self.logs()}")

    def lag(self, service: str) -> int:
        """Records of the service's input topic its group has not committed."""
        assert self.bus is not None
        topic = self.topics[INPUT_TOPIC[service]]
        return sum(self.bus.group_lag(f"linksyn.{service}", topic).values())

    def committed(self, service: str) -> int:
        """Records of the service's input topic its group has committed (summed over partitions). The lag is read
        first: a topic growing in between can only make this an over-estimate, never an under-estimate."""
        lag = self.lag(service)
        return self.topic_size(INPUT_TOPIC[service]) - lag

    def topic_size(self, key: str) -> int:
        assert self.bus is not None
        topic = self.topics[key]
        return sum(self.bus.group_lag(f"size-probe-{uuid.uuid4().hex[:8]}", topic).values())

    def finished(self) -> bool:
        """Everything pushed has gone through: every path emitted, every stage's input committed to the end, the
        graph's snapshot covering all of seed-kps. Checked in pipeline order, so a later stage's zero lag is read
        after the earlier stages had nothing left."""
        if self.lag("extractor") or self.lag("graph"):
            return False
        emitted = self.details("sampler").get("paths_emitted", 0)
        if emitted < self.max_paths:
            return False
        return self.lag("synth") == 0 and self.lag("sink") == 0

    def wait_finished(self, timeout: float = 400) -> None:
        t0 = time.monotonic()
        self.wait(self.finished, timeout, "the pipeline to finish", every=1.0)
        self._timed("wait_finished", t0)

    # ---- input -------------------------------------------------------------------------------------------------

    def push(self, *paths: Path) -> int:
        """`linksyn push` (a subprocess); returns the number of seeds it says it pushed."""
        t0 = time.monotonic()
        proc = subprocess.run([LINKSYN, "push", "--config", str(self.config_path), *map(str, paths)],
                              capture_output=True, text=True, timeout=300)
        self._timed("push", t0)
        assert proc.returncode == 0, proc.stderr[-3000:]
        line = proc.stdout.strip().splitlines()[-1]
        assert line.startswith("pushed "), proc.stdout
        return int(line.split()[1])

    def produce(self, key: str, value: bytes, record_key: bytes) -> None:
        """One raw record onto topic `key` (a TopicsConfig field), flushed."""
        assert self.bus is not None
        self.bus.produce(self.topics[key], value, key=record_key)
        self.bus.flush()

    # ---- output ------------------------------------------------------------------------------------------------

    def read_topic(self, key: str, timeout: float = 60) -> list[Any]:
        """Every record on topic `key` now (all partitions, from the start), read outside any consumer group (a
        group would cost a join per read)."""
        from kafka import KafkaConsumer
        from kafka import TopicPartition as KafkaTopicPartition
        from linksyn.common.bus.kafka import client_settings
        from linksyn.common.bus.memory import build_message

        assert self.bus is not None
        topic = self.topics[key]
        n = self.topic_size(key)
        reader = KafkaConsumer(group_id=None, enable_auto_commit=False, **client_settings(self.bus.cfg))
        out: list[Any] = []
        try:
            tps = [KafkaTopicPartition(topic, p) for p in range(self.bus.partitions_for(topic))]
            reader.assign(tps)
            reader.seek_to_beginning(*tps)
            deadline = time.monotonic() + timeout
            quiet_polls = 0
            # Until the reported size is reached and then two polls bring nothing (the log-end offsets the broker
            # reports can lag behind the records it holds).
            while (len(out) < n or quiet_polls < 2) and time.monotonic() < deadline:
                got = reader.poll(timeout_ms=500, max_records=500)
                quiet_polls = 0 if got else quiet_polls + 1
                for ktp, records in got.items():
                    out += [build_message(ktp.topic, ktp.partition, r.offset, r.key, r.value, (), r.timestamp)
                            for r in records]
        finally:
            reader.close()
        assert len(out) >= n, f"read {len(out)} of {n} records of {topic}"
        return out

    def dead_letters(self) -> list[records_pb2.DeadLetter]:
        return [records_pb2.DeadLetter.FromString(m.value) for m in self.read_topic("dead_letter")]

    def dataset(self) -> list[dict[str, Any]]:
        """Every row of the dataset's shards that the sink's manifests list (what `datasets` would load)."""
        return sink_dataset(self.config["sink"]["output_dir"])

    def sink_decisions(self) -> dict[str, list[int]]:
        """The sink's durable state: 64-bit ids of every QA it decided on, and of those it kept."""
        from linksyn.sink.store import DatasetStore

        return DatasetStore(self.config["sink"]["output_dir"]).decisions()



def sink_dataset(output_dir: str) -> list[dict[str, Any]]:
    """Every row of the shards that the sink's partition manifests list, in partition and shard order."""
    from linksyn.sink.store import DatasetStore

    root = Path(output_dir)
    rows: list[dict[str, Any]] = []
    for _, manifest in sorted(DatasetStore(output_dir).manifests().items()):
        for shard in manifest["shards"]:
            rows += [json.loads(line) for line in (root / shard["files"]["jsonl"]).read_text().splitlines()]
    return rows


# ---- malformed records and the ledger ------------------------------------------------------------------------------

GARBAGE = b"\x0f\xff not a protobuf record"
"""Bytes no linksyn record type parses (corrupt wire format)."""


def malformed_records() -> dict[str, list[tuple[bytes, bytes]]]:
    """Topic field -> (key, value) records that the consumer of that topic must dead-letter: undecodable bytes on
    every topic, plus records that decode but cannot be used."""
    return {
        "seeds": [(b"bad-seed-bytes", GARBAGE),
                  (b"bad-seed-empty", records_pb2.Seed(id="bad-seed-empty", question="   ").SerializeToString())],
        "seed_kps": [(b"bad-kps-bytes", GARBAGE),
                     (b"bad-kps-none", records_pb2.AnnotatedSeed(
                         seed=records_pb2.Seed(id="bad-kps-none", question="q?", answer="a"),
                         discipline="math").SerializeToString())],
        "paths": [(b"bad-path-bytes", GARBAGE),
                  (b"bad-path-noseeds", records_pb2.WalkPath(id="bad-path-noseeds", kps=["a", "b"]).SerializeToString())],
        "synth_qa": [(b"bad-qa-bytes", GARBAGE),
                     (b"bad-qa-noanswer", records_pb2.SynthQA(id="f" * 16, question="What is x?", answer=" ")
                      .SerializeToString())],
        "probes": [(b"bad-probe-bytes", GARBAGE)],
    }


def inject_malformed(cluster: Cluster) -> dict[str, set[bytes]]:
    """Produce malformed_records() onto every topic; returns topic field -> the keys injected."""
    injected: dict[str, set[bytes]] = {}
    for key, records in malformed_records().items():
        for record_key, value in records:
            cluster.produce(key, value, record_key)
        injected[key] = {k for k, _ in records}
    return injected


@dataclass
class Ledger:
    """What went in and what came out, read from the topics, the sink's state and the dataset shards."""

    seeds_in: set[str]
    annotated: set[str]
    annotated_records: int
    seeds_dead: set[str]
    dead: list[records_pb2.DeadLetter]
    path_ids: set[str]
    qa_ids: set[str]
    dataset: list[dict[str, Any]]
    decided: list[int]
    kept: list[int]
    graph_seeds: list[str]

    def dead_keys(self, topic: str) -> set[bytes]:
        return {d.key for d in self.dead if d.topic == topic}


def read_ledger(cluster: Cluster, pushed: set[str], injected: Mapping[str, set[bytes]]) -> Ledger:
    from linksyn.common.snapshots.store import SnapshotStore

    t = cluster.topics
    seed_keys = {m.key.decode() for m in cluster.read_topic("seeds")}
    bad_seeds = {k.decode() for k in injected.get("seeds", set())}
    assert seed_keys == pushed | bad_seeds, "the seeds topic does not hold exactly what was pushed"
    annotated_msgs = cluster.read_topic("seed_kps")
    annotated = set()
    for m in annotated_msgs:
        if m.key in injected.get("seed_kps", set()):
            continue
        annotated.add(records_pb2.AnnotatedSeed.FromString(m.value).seed.id)
    dead = cluster.dead_letters()
    paths = {m.key.decode() for m in cluster.read_topic("paths")} - {k.decode() for k in injected.get("paths", set())}
    qa_ids = set()
    for m in cluster.read_topic("synth_qa"):
        if m.key not in injected.get("synth_qa", set()):
            qa_ids.add(records_pb2.SynthQA.FromString(m.value).id)
    snap = SnapshotStore(cluster.config["graph"]["snapshot_url"]).latest()
    decisions = cluster.sink_decisions()
    return Ledger(
        seeds_in=pushed | bad_seeds,
        annotated=annotated,
        annotated_records=len(annotated_msgs) - len(injected.get("seed_kps", set())),
        seeds_dead={d.key.decode() for d in dead if d.topic == t["seeds"]},
        dead=dead,
        path_ids=paths,
        qa_ids=qa_ids,
        dataset=cluster.dataset(),
        decided=decisions["decided"],
        kept=decisions["kept"],
        graph_seeds=snap.seed_ids.to_list() if snap is not None else [],
    )


def check_ledger(ledger: Ledger, cluster: Cluster, injected: Mapping[str, set[bytes]]) -> None:
    """The delivery guarantees, as counts: nothing lost, nothing twice in the dataset, everything traceable.

    - seeds in = seeds annotated + seeds dead-lettered (by id, disjoint);
    - the graph holds every annotated seed, once;
    - every dead letter names its service and a reason; every injected malformed record is dead-lettered;
    - every SynthQA on synth-qa was decided by the sink exactly once (kept, or dropped as a duplicate); every kept
      QA is in the dataset exactly once, with no question twice; each row points at a path and at annotated seeds.
    """
    from linksyn.common.ids import id64, question_hash

    t = cluster.topics
    assert ledger.annotated | ledger.seeds_dead == ledger.seeds_in, (
        f"seeds lost: {sorted(ledger.seeds_in - ledger.annotated - ledger.seeds_dead)}")
    assert not ledger.annotated & ledger.seeds_dead, f"seeds both annotated and dead: {ledger.annotated & ledger.seeds_dead}"
    assert len(ledger.seeds_in) == len(ledger.annotated) + len(ledger.seeds_dead)
    assert sorted(ledger.graph_seeds) == sorted(ledger.annotated), "the graph does not hold every annotated seed once"
    for d in ledger.dead:
        assert d.service and d.error.strip() and d.attempts >= 0, d
    for key, keys in injected.items():
        assert keys <= ledger.dead_keys(t[key]), f"malformed records on {key} not dead-lettered: {keys - ledger.dead_keys(t[key])}"
    # the sink: every QA decided once, nothing else decided
    assert len(ledger.decided) == len(set(ledger.decided)), "the sink decided a QA twice"
    assert set(ledger.decided) == {id64(q) for q in ledger.qa_ids}, "a QA on synth-qa was never decided by the sink"
    assert len(ledger.kept) == len(set(ledger.kept)) == len(ledger.dataset)
    ids = [r["id"] for r in ledger.dataset]
    assert len(ids) == len(set(ids)), "a QA id appears twice in the dataset"
    questions = [question_hash(r["question"]) for r in ledger.dataset]
    assert len(questions) == len(set(questions)), "a question appears twice in the dataset"
    assert {id64(i) for i in ids} == set(ledger.kept)
    # One generation request gives at most one QA (a path redelivered to synth is sampled with the same seed: its QA
    # repeats and the sink skips it). A link or hard path is one request; a multi_grade path (the cluster walks link
    # paths, but a link path whose walk finds one seed only falls back to a single-seed mode) is one per grade.
    per_request = Counter((r["path_id"], r["difficulty"] if r["mode"] == "multi_grade" else None)
                          for r in ledger.dataset)
    assert max(per_request.values(), default=0) <= 1, f"requests with more than one QA: {per_request.most_common(3)}"
    for row in ledger.dataset:
        assert row["id"] in ledger.qa_ids
        assert row["path_id"] in ledger.path_ids, row
        assert row["source_seed_ids"] and set(row["source_seed_ids"]) <= ledger.annotated, row


def seed_waves(tmp_path: Path, n: int = 3) -> list[Path]:
    """The seed file cut into `n` files of consecutive lines (pushed one after the other)."""
    lines = SEEDS_FILE.read_text().splitlines(keepends=True)
    size = -(-len(lines) // n)
    waves = []
    for i in range(n):
        p = tmp_path / f"wave-{i}.jsonl"
        p.write_text("".join(lines[i * size:(i + 1) * size]))
        waves.append(p)
    return waves
