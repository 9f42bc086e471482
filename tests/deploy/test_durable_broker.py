"""The durable test broker (Tansu on an S3 server) keeps every record and committed offset across a kill -9 of the
broker: the property the deployment test relies on when it kills the broker mid-stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.broker import DurableBroker

pytestmark = [pytest.mark.kafka, pytest.mark.deploy, pytest.mark.timeout(300)]

N = 2000


def read_all(bootstrap: str, topic: str, partitions: int, expect: int) -> list[bytes]:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out: list[bytes] = []
        quiet = 0
        while len(out) < expect or quiet < 2:
            got = c.poll(timeout_ms=1000, max_records=1000)
            quiet = 0 if got else quiet + 1
            if quiet > 20:
                break
            for records in got.values():
                out += [r.value for r in records]
        return out
    finally:
        c.close()


def test_records_and_offsets_survive_a_kill9_of_the_broker(tmp_path: Path) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.structs import OffsetAndMetadata

    with DurableBroker(tmp_path) as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic("durable", 2, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        for i in range(N):
            producer.send("durable", f"r{i}".encode(), partition=i % 2)
        producer.flush()
        producer.close()
        group = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="g", enable_auto_commit=False)
        group.commit({TopicPartition("durable", 0): OffsetAndMetadata(123, "", -1)})
        group.close()

        broker.kill9_broker()
        broker.restart_broker()

        values = read_all(broker.bootstrap, "durable", 2, N)
        assert sorted(values) == sorted(f"r{i}".encode() for i in range(N))
        group = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="g", enable_auto_commit=False)
        try:
            assert group.committed(TopicPartition("durable", 0)) == 123
        finally:
            group.close()
    assert broker.tansu_pid is None and broker.s3_pid is None
