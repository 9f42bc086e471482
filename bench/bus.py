"""Records/s through KafkaBus (a real Tansu broker started here) and through InMemoryBus, in one run.

    .venv/bin/python bench/bus.py [--records 100000] [--memory-records 300000] [--partitions 12] [--repeat 3]

The workload, for each bus: protobuf `linksyn.v1.records_pb2.Seed` records (~200 bytes serialised, keyed by seed
id, pre-serialised so the figure is the bus's, not protobuf's), one producer thread, one consumer group with one
member that commits after every poll. The clock runs from the first produce until the consumer has read every
record (end to end); the produce-side rate (send + flush) is printed too. The group is formed before the clock
starts, so the ~3 s Kafka group join is not counted. Best of --repeat runs. Aims, on 2 cores: >= 10,000 records/s
on Kafka, >= 200,000 records/s in memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linksyn.common.bus import Bus, InMemoryBus, OutRecord, TopicPartition  # noqa: E402
from linksyn.common.bus.kafka import KafkaBus  # noqa: E402
from linksyn.common.config import KafkaConfig  # noqa: E402
from linksyn.common.ids import content_id  # noqa: E402
from linksyn.v1 import records_pb2  # noqa: E402
from report import Aim, Figure, add_json_option, write_json  # noqa: E402

from tests.tooling.tansu import TansuBroker  # noqa: E402

AIM_KAFKA = 10_000
AIM_MEMORY = 200_000


def seed_records(n: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of serialised Seed records, ~200 bytes each."""
    out = []
    for i in range(n):
        sid = content_id("bench", i)
        seed = records_pb2.Seed(
            id=sid,
            question=f"A train leaves the station at {i % 24}:00 travelling at {40 + i % 60} km/h. How far has it gone after {1 + i % 9} hours?",
            answer=f"{(40 + i % 60) * (1 + i % 9)} km",
            source=f"bench:{i}",
            subject="arithmetic",
            difficulty=1 + i % 5,
            lang="en",
        )
        out.append((sid.encode(), seed.SerializeToString()))
    return out


def broker_cpu_s(pid: int | None) -> float:
    """CPU seconds the broker process has used (Linux /proc), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Result:
    def __init__(self, n: int, wall_s: float, produce_s: float, client_cpu_s: float, broker_cpu_s: float) -> None:
        self.n, self.wall_s, self.produce_s = n, wall_s, produce_s
        self.client_cpu_s, self.broker_cpu_s = client_cpu_s, broker_cpu_s

    @property
    def rate(self) -> float:
        return self.n / self.wall_s

    @property
    def cpu_bound_rate(self) -> float:
        """Records/s two idle cores would sustain, from CPU used: the client is one GIL-bound process (one core at
        most), and client + broker share the two cores."""
        return self.n / max(self.client_cpu_s, (self.client_cpu_s + self.broker_cpu_s) / 2)

    def line(self) -> str:
        return (
            f"{self.rate:>10,.0f} records/s end to end ({self.n / self.produce_s:,.0f}/s produce); CPU per record: "
            f"client {self.client_cpu_s / self.n * 1e6:.1f} us, broker {self.broker_cpu_s / self.n * 1e6:.1f} us"
        )


def run_once(bus: Bus, records: list[tuple[bytes, bytes]], partitions: int, tag: str, batch: int,
             broker_pid: int | None) -> Result:
    """One producer thread (produce, or produce_many of `batch` records when batch > 1) and one group member that
    commits after every poll."""
    topic, group = f"bench-{tag}", f"bench-{tag}"
    bus.ensure_topics({topic: partitions})
    consumer = bus.consumer(group, [topic])
    deadline = time.monotonic() + 60
    while len(consumer.assignment()) < partitions:  # form the group before the clock starts
        if time.monotonic() > deadline:
            raise SystemExit(f"{tag}: the consumer group did not form within 60 s")
        consumer.poll(max_records=1, timeout_s=0.2)
    chunks = [[OutRecord(topic, v, key=k) for k, v in records[i : i + batch]] for i in range(0, len(records), batch)]

    produce_s = [0.0]

    def produce() -> None:
        t = time.perf_counter()
        if batch > 1:
            for chunk in chunks:
                bus.produce_many(chunk)
        else:
            send = bus.produce
            for key, value in records:
                send(topic, value, key=key)
        bus.flush()
        produce_s[0] = time.perf_counter() - t

    n = len(records)
    seen = 0
    cpu0, broker0 = time.process_time(), broker_cpu_s(broker_pid)
    start = time.perf_counter()
    producer = threading.Thread(target=produce, name=f"producer-{tag}")
    producer.start()
    while seen < n:
        got = consumer.poll(max_records=2000, timeout_s=1.0)
        if not got:
            if not producer.is_alive() and time.perf_counter() - start > 120:
                raise SystemExit(f"{tag}: only {seen} of {n} records arrived")
            continue
        seen += len(got)
        ends: dict[int, int] = {}
        for m in got:
            ends[m.partition] = m.offset + 1
        consumer.commit({TopicPartition(topic, p): off for p, off in ends.items()})
    elapsed = time.perf_counter() - start
    producer.join()
    result = Result(n, elapsed, produce_s[0], time.process_time() - cpu0, broker_cpu_s(broker_pid) - broker0)
    consumer.close()
    return result


def best(label: str, make: Callable[[], Bus], records: list, partitions: int, repeat: int, batch: int = 1,
         broker_pid: int | None = None) -> Result:
    results = []
    for i in range(repeat):
        bus = make()
        try:
            results.append(run_once(bus, records, partitions, f"{label.replace(' ', '-')}-{i}-{os.getpid()}", batch, broker_pid))
        finally:
            bus.close()
        print(f"  {label:<22} run {i + 1}: {results[-1].line()}", flush=True)
    return max(results, key=lambda r: r.rate)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000, help="records per Kafka run")
    ap.add_argument("--memory-records", type=int, default=300_000, help="records per in-memory run")
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    add_json_option(ap)
    args = ap.parse_args()

    records = seed_records(max(args.records, args.memory_records))
    size = sum(len(v) for _, v in records[:1000]) / 1000
    print(f"linksyn bus bench: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, Seed records of {size:.0f} bytes (+ 32-byte key), {args.partitions} partitions")

    runs: list[tuple[str, Result, int]] = []
    runs.append(("memory produce", best("memory produce", InMemoryBus, records[: args.memory_records],
                                        args.partitions, args.repeat), AIM_MEMORY))
    runs.append(("memory produce_many", best("memory produce_many", InMemoryBus, records[: args.memory_records],
                                             args.partitions, args.repeat, batch=500), AIM_MEMORY))
    with TansuBroker() as broker:
        cfg = KafkaConfig(bootstrap=broker.bootstrap, session_timeout_ms=6000, heartbeat_interval_ms=1000,
                          max_poll_interval_ms=10000)
        runs.append(("kafka produce", best("kafka produce", lambda: KafkaBus(cfg), records[: args.records],
                                           args.partitions, args.repeat, broker_pid=broker.pid), AIM_KAFKA))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nbest of {args.repeat} (load average {load:.1f} on {os.cpu_count()} CPUs: wall figures suffer when it is "
          f"above the CPU count; the CPU-bound column is what two idle cores would sustain)")
    print(f"{'bus / producer call':<22}{'records/s':>12}{'CPU-bound':>12}{'aim':>10}")
    for label, r, aim in runs:
        verdict = "ok" if r.rate >= aim else ("ok when idle" if r.cpu_bound_rate >= aim else "below aim")
        print(f"{label:<22}{r.rate:>12,.0f}{r.cpu_bound_rate:>12,.0f}{aim:>10,}  {verdict}")
    kafka = runs[-1][1]
    for label, r, _ in runs[:-1]:
        print(f"{label} / kafka produce: {r.rate / kafka.rate:.1f}x wall, {r.cpu_bound_rate / kafka.cpu_bound_rate:.1f}x CPU-bound")
    if args.json:
        figures = []
        for label, r, aim in runs:
            base = {} if r is kafka else {"baseline_name": "kafka produce", "baseline_value": kafka.rate}
            figures.append(Figure(f"{label}, end to end", r.rate, "records/s", aim=Aim(">=", aim),
                                  note=f"best of {args.repeat}; {r.n:,} records; "
                                       f"produce side {r.n / r.produce_s:,.0f}/s",
                                  **base))
            base = {} if r is kafka else {"baseline_name": "kafka produce, CPU-bound",
                                          "baseline_value": kafka.cpu_bound_rate}
            figures.append(Figure(f"{label}, CPU-bound", r.cpu_bound_rate, "records/s", aim=Aim(">=", aim),
                                  note="what two idle cores would sustain, from the CPU time used", **base))
        write_json(args.json, figures, [f"load average {load:.1f} on {os.cpu_count()} CPUs after the runs; "
                                        f"{args.partitions} partitions, Seed records of {size:.0f} bytes"])


if __name__ == "__main__":
    main()
