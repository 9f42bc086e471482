"""Fault tests on the cluster of real processes (see tests/system/cluster.py). Each one fails if a record is lost
or duplicated: seeds in = seeds annotated + seeds dead-lettered, every SynthQA is decided by the sink once, every
kept QA is in the dataset exactly once (no id, no question twice) and traces back to a path and annotated seeds.

- SIGKILL of each service in turn in the middle of the stream, then a restart;
- the broker unavailable for a while: the Tansu broker process is frozen with SIGSTOP for 15 s, then SIGCONT
  (a restart would lose its in-memory topics, so "unavailable" is modelled as a broker that answers nothing:
  connections stay open, every request times out);
- the LLM server returning HTTP 500s, then stalling past the client timeout, for a while (a fault-injecting proxy
  in front of the real llama-cpp server);
- malformed records on every topic: dead-lettered with their reasons while the rest flows.

The `fault` mark is on the long ones: `pytest -m "not fault"` skips them locally; CI runs everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from linksyn.common.seeds import SeedReader

from tests.system.cluster import (
    INPUT_TOPIC,
    LINKSYN,
    PIPELINE,
    SEEDS_FILE,
    Cluster,
    check_ledger,
    inject_malformed,
    read_ledger,
    seed_waves,
)
from tests.system.fault_proxy import LLMFaultProxy

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(600)]

MAX_PATHS = 8
SEED_IDS = {s.id for s in SeedReader([SEEDS_FILE])}


def counter(row: dict, name: str) -> float:
    """Sum of a consumer counter over its labels, from a `linksyn status` row."""
    return sum(v for k, v in row["counters"].items() if k.split("{", 1)[0] == name)


def finish_and_check(cluster: Cluster, injected: dict | None = None) -> object:
    """Wait for the pipeline to finish, check every service is SERVING, check the ledger; returns it."""
    cluster.wait_finished()
    rc, rows = cluster.status_cli()
    assert rc == 0 and all(r["health"] == "SERVING" for r in rows), rows
    ledger = read_ledger(cluster, SEED_IDS, injected or {})
    check_ledger(ledger, cluster, injected or {})
    assert ledger.dataset, cluster.logs()
    print("cluster timings:", cluster.timings, "dataset rows:", len(ledger.dataset),
          "dead letters:", len(ledger.dead), "seed-kps records:", ledger.annotated_records)
    return ledger


# ---- SIGKILL of each service mid-stream ---------------------------------------------------------------------------


@pytest.mark.fault
@pytest.mark.parametrize("victim", PIPELINE)
def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(victim: str, openai_server, tmp_path: Path):
    """The victim's first process never commits (commit interval of an hour, for that process alone), so the kill
    always lands on finished, produced, uncommitted work: the worst case of a SIGKILL between produce and commit.
    The restarted process (normal config) gets all of it again."""
    never_commit = {victim: {"LINKSYN_RUNTIME__COMMIT_INTERVAL_S": "3600"}} if victim != "sampler" else {}
    with Cluster(tmp_path / "cluster", openai_server.spec, max_paths=MAX_PATHS) as cluster:
        cluster.start(env=never_commit)
        waves = seed_waves(tmp_path)
        if victim in ("extractor", "graph"):
            # Kill it while it reads the second wave, push the third while it is down.
            cluster.push(waves[0])
            first = len(list(SeedReader([waves[0]])))
            # ... once it has finished the first wave (the extractor: its outputs produced), still uncommitted.
            done = "consumer_records_out_total" if victim == "extractor" else "consumer_records_in_total"
            cluster.wait(lambda: counter(cluster.status_row(victim), done) >= first, 120,
                         f"{victim} to finish the first wave")
            pusher = subprocess.Popen([LINKSYN, "push", "--config", str(cluster.config_path), str(waves[1])],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cluster.wait(lambda: counter(cluster.status_row(victim), "consumer_records_in_total") > first, 120,
                         f"{victim} to read the second wave", every=0.05)
            done_before = counter(cluster.status_row(victim), "consumer_records_in_total")
            cluster.kill9(victim)
            committed_at_kill = cluster.committed(victim)  # frozen: a dead member commits nothing more
            assert pusher.wait(120) == 0
            cluster.push(waves[2])
        else:
            cluster.push(*waves)
            if victim == "sampler":
                mid = lambda: 2 <= cluster.details("sampler").get("paths_emitted", 0) < MAX_PATHS  # noqa: E731
            elif victim == "synth":
                mid = lambda: counter(cluster.status_row("synth"), "consumer_records_out_total") >= 1  # noqa: E731
            else:
                mid = lambda: counter(cluster.status_row("sink"), "consumer_records_in_total") >= 2  # noqa: E731
            cluster.wait(mid, 300, f"{victim} in the middle of the stream", every=0.1)
            row = cluster.status_row(victim)
            done_before = (row["details"]["paths_emitted"] if victim == "sampler"
                           else counter(row, "consumer_records_in_total"))
            if victim != "sink":  # the sink's input, QA, keeps coming after the sampler is done: checked below
                assert cluster.details("sampler").get("paths_emitted", 0) < MAX_PATHS, "the stream was over"
            cluster.kill9(victim)
            committed_at_kill = cluster.committed(victim) if victim != "sampler" else 0
        assert done_before >= 1
        time.sleep(2.0)  # the stream goes on while it is down
        cluster.start(victim)
        finish_and_check(cluster)
        assert cluster.services[victim].starts == 2
        after = cluster.status_row(victim)
        if victim == "sink":
            # Mid-stream for the sink: QA were still coming when it died (the sampler, upstream and fast, may well
            # have emitted every path by then, and the synth still be writing QA for them).
            assert cluster.topic_size(INPUT_TOPIC["sink"]) > done_before, "killed after its input was complete"
        if victim != "sampler":
            # The restarted process read everything its group had not committed when the first one died, including
            # records that one had already read (and mostly finished). The first process commits nothing on its
            # interval, but a rebalance makes it commit finished work on revoke, so what was committed is measured
            # (after the kill, when it cannot change) rather than assumed to be nothing.
            topic_size = cluster.topic_size(INPUT_TOPIC[victim])
            assert counter(after, "consumer_records_in_total") >= topic_size - committed_at_kill
            print(f"{victim}: read {done_before:g} before the kill, {committed_at_kill} committed; the restart read "
                  f"{counter(after, 'consumer_records_in_total'):g} of {topic_size}")
        else:
            assert after["details"]["paths_emitted"] == MAX_PATHS


# ---- the broker unavailable for a while --------------------------------------------------------------------------


@pytest.mark.fault
def test_broker_frozen_for_15s_producers_and_consumers_recover(openai_server, tmp_path: Path):
    with Cluster(tmp_path / "cluster", openai_server.spec, max_paths=MAX_PATHS) as cluster:
        cluster.start()
        waves = seed_waves(tmp_path, 2)
        cluster.push(waves[0])
        cluster.wait(lambda: counter(cluster.status_row("synth"), "consumer_records_in_total") >= 1, 300,
                     "synth to start on paths")
        assert cluster.broker is not None and cluster.broker.pid is not None
        os.kill(cluster.broker.pid, signal.SIGSTOP)
        try:
            # A `linksyn push` during the outage either waits it out or gives up with a clear error, nothing else.
            pusher = subprocess.Popen([LINKSYN, "push", "--config", str(cluster.config_path), str(waves[1])],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(15)
            cluster.check_alive()
        finally:
            os.kill(cluster.broker.pid, signal.SIGCONT)
        out, err = pusher.communicate(timeout=180)
        if pusher.returncode != 0:
            assert "cannot connect to Kafka" in err or "pushing to" in err, err[-3000:]
            cluster.push(waves[1])  # the broker is back: the same seeds again (same ids, so no double counting)
        finish_and_check(cluster)
        for name in PIPELINE:
            assert cluster.services[name].starts == 1 and cluster.services[name].alive(), name


# ---- the LLM server failing for a while ----------------------------------------------------------------------------


@pytest.mark.fault
def test_llm_errors_then_timeouts_for_a_while_then_recovery(openai_server, tmp_path: Path):
    with LLMFaultProxy(openai_server.base_url, stall_s=15.0) as proxy:
        spec = f"openai:{proxy.base_url}#{openai_server.model_name}"
        # Retry budgets that outlast the 16 s window: the client tries twice (12 s timeout, shorter than the
        # proxy's 15 s stall), the consumer loop retries a failed path 6 times with backoff 1, 2, 4, 8, 8 s; a path
        # that still fails is dead-lettered. At most 2 requests in flight: the real server answers one at a time and
        # keeps computing requests whose client gave up, so a deeper queue would time out without any fault.
        overrides = {"synth": {"llm": {"request_timeout_s": 12, "retry": {"max_attempts": 2}, "max_concurrency": 2}},
                     "runtime": {"retry": {"max_attempts": 6, "backoff_initial_s": 1.0, "backoff_max_s": 8.0}}}
        with Cluster(tmp_path / "cluster", spec, max_paths=MAX_PATHS, overrides=overrides) as cluster:
            cluster.start()
            cluster.push(SEEDS_FILE)
            cluster.wait(lambda: counter(cluster.status_row("synth"), "consumer_records_out_total") >= 1, 300,
                         "a first QA")
            proxy.fault("errors", 8)
            time.sleep(8)
            proxy.fault("stalls", 8)
            time.sleep(8)
            qa_before = counter(cluster.status_row("synth"), "consumer_records_out_total")
            ledger = finish_and_check(cluster)
            assert proxy.counts["errors"] >= 1 and proxy.counts["stalls"] >= 1, proxy.counts
            assert counter(cluster.status_row("synth"), "consumer_records_out_total") > qa_before  # it recovered
            synth_dead = [d for d in ledger.dead if d.service == "synth"]
            for d in synth_dead:  # a path whose every attempt fell in the window: dead-lettered with the reason
                assert "HTTP 500" in d.error or "timeout" in d.error or "HTTP 503" in d.error, d.error
            print("proxy:", proxy.counts, "synth dead letters:", len(synth_dead))


# ---- malformed records on every topic ------------------------------------------------------------------------------


def test_malformed_records_on_every_topic_are_dead_lettered_and_the_rest_flows(openai_server, tmp_path: Path):
    expected_reasons = {
        b"bad-seed-bytes": ("extractor", "malformed Seed protobuf"),
        b"bad-seed-empty": ("extractor", "empty question"),
        b"bad-kps-bytes": ("graph", ""),
        b"bad-kps-none": ("graph", "no_kps"),
        b"bad-path-bytes": ("synth", "malformed WalkPath protobuf"),
        b"bad-path-noseeds": ("synth", "has no seeds"),
        b"bad-qa-bytes": ("sink", "malformed SynthQA protobuf"),
        b"bad-qa-noanswer": ("sink", "empty answer"),
        b"bad-probe-bytes": ("sampler", ""),
    }
    with Cluster(tmp_path / "cluster", openai_server.spec, max_paths=MAX_PATHS) as cluster:
        cluster.start()
        waves = seed_waves(tmp_path, 2)
        cluster.push(waves[0])
        injected = inject_malformed(cluster)  # in the middle of the stream
        cluster.push(waves[1])
        ledger = finish_and_check(cluster, injected)
        cluster.wait(lambda: cluster.lag("sampler") == 0, 60, "the sampler to read the probes topic")
        by_key = {}
        for d in cluster.dead_letters():
            by_key.setdefault(d.key, []).append(d)
        for key, (service, reason) in expected_reasons.items():
            assert key in by_key, f"{key!r} was not dead-lettered"
            for d in by_key[key]:
                assert d.service == service and reason in d.error and d.payload, (key, d.service, d.error)
        assert ledger.seeds_dead >= {"bad-seed-bytes", "bad-seed-empty"}
        assert len(ledger.annotated) >= 40
