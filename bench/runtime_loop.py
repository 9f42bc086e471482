"""Throughput of the consumer loop (linksyn.common.runtime.loop) on the in-memory bus.

Run: .venv/bin/python bench/runtime_loop.py [--records N]

An echo stage (one output per input) goes through ConsumerLoop with the default runtime settings and with bigger
batches, against a baseline measured in the same process: a bare poll -> produce_many -> commit loop on one thread
with no batching, concurrency, retries or in-order commit tracking. The ratio is what the runtime's guarantees cost.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linksyn.common.bus import InMemoryBus, Message, OutRecord  # noqa: E402
from linksyn.common.config import RuntimeConfig, TopicsConfig  # noqa: E402
from linksyn.common.runtime.loop import ConsumerLoop  # noqa: E402
from linksyn.common.runtime.stage import Result  # noqa: E402
from report import Figure, add_json_option, write_json  # noqa: E402

PARTITIONS = 4


def fill(n: int) -> tuple[InMemoryBus, str, str]:
    bus = InMemoryBus()
    u = uuid.uuid4().hex[:8]
    src, dst = f"in-{u}", f"out-{u}"
    bus.ensure_topics({src: PARTITIONS, dst: PARTITIONS})
    value = b"x" * 200
    for i in range(n):
        bus.produce(src, value, key=b"%d" % i)
    return bus, src, dst


def baseline(n: int) -> float:
    bus, src, dst = fill(n)
    c = bus.consumer("bare", [src])
    t0 = time.perf_counter()
    seen = 0
    while seen < n:
        msgs = c.poll(max_records=500, timeout_s=0.1)
        bus.produce_many([OutRecord(dst, m.value, key=m.key) for m in msgs])
        nxt = {}
        for m in msgs:
            nxt[m.tp] = m.offset + 1
        if nxt:
            c.commit(nxt)
        seen += len(msgs)
    dt = time.perf_counter() - t0
    c.close()
    return n / dt


class Echo:
    def __init__(self, src: str, dst: str) -> None:
        self.name = f"bench-echo-{uuid.uuid4().hex[:6]}"
        self.input_topics = [src]
        self.dst = dst

    def process(self, batch: Sequence[Message]) -> list[Result]:
        dst = self.dst
        return [Result(outputs=[OutRecord(dst, m.value, key=m.key)]) for m in batch]


def through_loop(n: int, cfg: RuntimeConfig) -> float:
    bus, src, dst = fill(n)
    loop = ConsumerLoop(bus, Echo(src, dst), cfg, TopicsConfig(), f"bench-{uuid.uuid4().hex[:6]}")
    t0 = time.perf_counter()
    loop.start()
    while loop.stats()["records_out"] < n:
        time.sleep(0.005)
    dt = time.perf_counter() - t0
    assert loop.stop(timeout=60)
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    add_json_option(ap)
    args = ap.parse_args()
    n = args.records
    figures = []
    base = baseline(n)
    print(f"records: {n}, partitions: {PARTITIONS}, 200-byte values")
    print(f"baseline (bare poll/produce/commit, one thread): {base:12,.0f} records/s")
    for label, cfg in (
        ("ConsumerLoop defaults (batch 64, 4 workers, in-flight 256)", RuntimeConfig()),
        ("ConsumerLoop batch 256, 4 workers, in-flight 2048", RuntimeConfig(batch_size=256, max_in_flight=2048)),
        ("ConsumerLoop batch 256, 1 worker, in-flight 2048", RuntimeConfig(batch_size=256, max_in_flight=2048, workers=1)),
    ):
        r = through_loop(n, cfg)
        print(f"{label:60s} {r:12,.0f} records/s  ratio to baseline {r / base:5.2f}")
        figures.append(Figure(label, r, "records/s", "bare poll/produce/commit, one thread", base))
    if args.json:
        write_json(args.json, figures, [f"{n:,} records, {PARTITIONS} partitions, 200-byte values, in-memory bus"])


if __name__ == "__main__":
    main()
