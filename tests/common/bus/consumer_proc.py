"""A group member in its own process, for the SIGKILL test of test_conformance.py.

Usage: consumer_proc.py BOOTSTRAP TOPIC GROUP N_PROCESS N_COMMIT
Joins GROUP on a KafkaBus, reads N_PROCESS records, commits only the first N_COMMIT offsets of each partition,
prints "processed N_PROCESS committed N_COMMIT" and then waits, holding its partitions, to be killed.
"""

from __future__ import annotations

import sys
import time

from linksyn.common.bus.kafka import KafkaBus
from linksyn.common.config import KafkaConfig


def main(bootstrap: str, topic: str, group: str, n_process: int, n_commit: int) -> None:
    # The fast group timings of tests/conftest.py, so the broker expires this member ~6 s after SIGKILL.
    cfg = KafkaConfig(
        bootstrap=bootstrap, session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_interval_ms=10000
    )
    bus = KafkaBus(cfg)
    consumer = bus.consumer(group, [topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < n_process:
        if time.monotonic() > deadline:
            sys.exit(f"read only {len(got)} of {n_process} records in 60 s")
        got.extend(consumer.poll(max_records=n_process - len(got), timeout_s=0.5))
    consumer.commit({tp: n_commit for tp in {m.tp for m in got}})
    print(f"processed {len(got)} committed {n_commit}", flush=True)
    while True:  # kafka-python's IO thread keeps heartbeating: a live member holding its partitions until SIGKILL
        time.sleep(0.5)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
