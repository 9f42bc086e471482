"""A tiny service run as a real OS process by test_service.py: an echo stage under `run_service`.

Usage: python echo_service_proc.py CONFIG_JSON
CONFIG_JSON: {"bus": "memory"|"kafka", "bootstrap": str, "prefix": str, "records": int, "batch_sleep_s": float,
              "result": path}
With the memory bus the process produces its own input records (a memory bus cannot be shared between processes).
Prints "STARTED" after the first output record and "ALL-OUT" once every input has an output; on exit writes the
result JSON: exit code, committed offsets (memory bus), processed offsets.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import RecordingBus  # noqa: E402

from linksyn.common.bus import Message, OutRecord, make_bus  # noqa: E402
from linksyn.common.config import TopicsConfig  # noqa: E402
from linksyn.common.runtime.parts import ServiceParts  # noqa: E402
from linksyn.common.runtime.host import run_service  # noqa: E402
from linksyn.common.runtime.stage import Result  # noqa: E402
from linksyn.config import LinksynConfig  # noqa: E402


class Echo:
    name = "echo-proc"

    def __init__(self, src: str, dst: str, sleep_s: float) -> None:
        self.input_topics = [src]
        self.dst = dst
        self.sleep_s = sleep_s
        self.processed: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def process(self, batch: Sequence[Message]) -> list[Result]:
        time.sleep(self.sleep_s)
        with self.lock:
            self.processed.extend((m.partition, m.offset) for m in batch)
        return [Result.ok(OutRecord(self.dst, m.value, key=m.key)) for m in batch]


def main() -> int:
    spec = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    p = spec["prefix"]
    topics = TopicsConfig(
        seeds=f"{p}.seeds", seed_kps=f"{p}.seed-kps", paths=f"{p}.paths", synth_qa=f"{p}.synth-qa",
        probes=f"{p}.probes", dead_letter=f"{p}.dead-letter", partitions=2,
    )
    cfg = LinksynConfig(
        bus={"kind": spec["bus"], "topics": topics, "kafka": {
            "bootstrap": spec.get("bootstrap") or "127.0.0.1:9",
            "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "max_poll_interval_ms": 10000,
        }},
        runtime={"batch_size": 8, "batch_wait_s": 0.01, "commit_interval_s": 0.2, "shutdown_timeout_s": 10},
        server={"host": "127.0.0.1", "grpc_port": 0, "metrics_port": 0},
    )
    bus = RecordingBus(make_bus(cfg.bus))
    stage = Echo(topics.seeds, topics.seed_kps, spec["batch_sleep_s"])
    n = spec["records"]
    if spec["bus"] == "memory":
        bus.ensure_topics(topics.all_partitions())
        for i in range(n):
            bus.produce(topics.seeds, b"%d" % i, key=b"%d" % i)

    def watch() -> None:
        started = False
        while True:
            with stage.lock:
                done = len(stage.processed)
            if done and not started:
                print("STARTED", flush=True)
                started = True
            if done >= n:
                print("ALL-OUT", flush=True)
                return
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()
    rc = run_service(ServiceParts(name=stage.name, stage=stage), cfg, bus)
    committed: dict[str, int] = {}
    for c in bus.commits:
        committed.update({f"{tp.topic}:{tp.partition}": off for tp, off in c.items()})
    Path(spec["result"]).write_text(json.dumps({"rc": rc, "committed": committed, "processed": stage.processed}))
    return rc


if __name__ == "__main__":
    sys.exit(main())
