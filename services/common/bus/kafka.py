"""`KafkaBus`: the Bus on a Kafka-protocol cluster, through kafka-python (3.x).

- Producer: idempotent (`enable_idempotence=True`, `acks='all'`), asynchronous; a failed send is remembered and
  raised by the next `flush`. Keys are placed by murmur2 as Kafka's default partitioner does (our faster
  implementation, same result).
- Consumers: one KafkaConsumer per member, `enable_auto_commit=False`, `auto_offset_reset='earliest'`, eager
  rebalances; `commit` stores the next offset synchronously.
- Rebalance callbacks: kafka-python 3 runs them on its IO thread, where a blocking consumer call would deadlock.
  So a `commit` made inside `on_revoke`/`on_assign` is collected and sent (and awaited) by the listener right after
  the callback returns, still before the partitions are given up. Inside callbacks, only `commit` and `assignment`
  may be used.
- Security: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL with PLAIN/SCRAM, from `KafkaConfig`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Iterable, Mapping, Sequence

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import (
    IllegalGenerationError,
    KafkaError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    UnknownMemberIdError,
)
from kafka.errors import CommitFailedError as KafkaCommitFailedError
from kafka.partitioner import StickyPartitioner
from kafka.structs import OffsetAndMetadata

from linksyn.common.bus.base import (
    Bus,
    Consumer,
    Headers,
    Message,
    RebalanceCallback,
    TopicPartition,
    check_consumer_args,
    check_partition_counts,
)
from linksyn.common.bus.errors import (
    BrokerUnavailableError,
    BusClosedError,
    BusError,
    CommitFailedError,
    ProduceError,
    UnknownTopicError,
)
from linksyn.common.bus.memory import build_message, key_partition
from linksyn.common.config import KafkaConfig

log = logging.getLogger(__name__)

# Producer batching: kafka-python spends its time per batch and per request, so bigger batches carry more records
# per Python-level operation. 1 MiB batches hold ~4,000 records of ~250 bytes.
PRODUCER_BATCH_BYTES = 1024 * 1024
# Records a consumer fetches per partition per request (bytes); the broker's default is 1 MiB.
CONSUMER_PARTITION_FETCH_BYTES = 4 * 1024 * 1024


def client_settings(cfg: KafkaConfig) -> dict[str, Any]:
    """kafka-python connection settings (bootstrap, timeouts, TLS, SASL) for producer, consumer and admin."""
    servers = [s.strip() for s in cfg.bootstrap.split(",") if s.strip()]
    if not servers:
        raise ValueError(f"kafka.bootstrap is empty ({cfg.bootstrap!r}): give host:port[,host:port...]")
    out: dict[str, Any] = {
        "bootstrap_servers": servers,
        "security_protocol": cfg.security_protocol,
        "request_timeout_ms": cfg.request_timeout_ms,
        # An unreachable cluster fails construction after this long, with BrokerUnavailableError.
        "bootstrap_timeout_ms": cfg.request_timeout_ms,
    }
    if cfg.security_protocol.startswith("SASL_"):
        if cfg.sasl_mechanism is None:
            raise ValueError(f"kafka.security_protocol={cfg.security_protocol} needs kafka.sasl_mechanism")
        if cfg.sasl_mechanism == "OAUTHBEARER":
            raise ValueError(
                "kafka.sasl_mechanism=OAUTHBEARER needs a token provider, which linksyn cannot configure; "
                "use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            )
        if not cfg.sasl_username or cfg.sasl_password is None:
            raise ValueError(
                f"kafka.sasl_mechanism={cfg.sasl_mechanism} needs kafka.sasl_username and kafka.sasl_password"
            )
        out |= {
            "sasl_mechanism": cfg.sasl_mechanism,
            "sasl_plain_username": cfg.sasl_username,
            "sasl_plain_password": cfg.sasl_password.get_secret_value(),
        }
    if cfg.security_protocol in ("SSL", "SASL_SSL"):
        out |= {"ssl_cafile": cfg.ssl_cafile, "ssl_certfile": cfg.ssl_certfile, "ssl_keyfile": cfg.ssl_keyfile}
    elif cfg.ssl_cafile or cfg.ssl_certfile or cfg.ssl_keyfile:
        raise ValueError(
            f"kafka.ssl_* files are set but kafka.security_protocol={cfg.security_protocol} does not use TLS; "
            "use SSL or SASL_SSL"
        )
    return out


def consumer_settings(cfg: KafkaConfig, group: str) -> dict[str, Any]:
    """KafkaConsumer settings for one member of `group`: manual commits, earliest reset, the config's timings."""
    return client_settings(cfg) | {
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": cfg.session_timeout_ms,
        "heartbeat_interval_ms": cfg.heartbeat_interval_ms,
        "max_poll_interval_ms": cfg.max_poll_interval_ms,
        "max_partition_fetch_bytes": max(CONSUMER_PARTITION_FETCH_BYTES, cfg.max_request_size),
    }


def producer_settings(cfg: KafkaConfig) -> dict[str, Any]:
    """KafkaProducer settings: idempotent, acks from all in-sync replicas, batched."""
    return client_settings(cfg) | {
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": cfg.linger_ms,
        "batch_size": PRODUCER_BATCH_BYTES,
        "max_request_size": cfg.max_request_size,
        "partitioner": _Murmur2Partitioner(),
        "compression_type": None if cfg.compression_type == "none" else cfg.compression_type,
        # How long send() may block for topic metadata or buffer space before it raises.
        "max_block_ms": cfg.request_timeout_ms,
    }


class _Murmur2Partitioner(StickyPartitioner):
    """Kafka's placement (murmur2 of the key; sticky batches for null keys) with the faster hash from memory.py."""

    def partition(self, topic, key, serialized_key, value, serialized_value, cluster):  # type: ignore[override]
        if serialized_key is None:
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise ValueError(f"topic {topic!r} not found in cluster metadata")
        return key_partition(serialized_key, len(partitions))  # a topic's partitions are 0..n-1


def _unreachable(cfg: KafkaConfig, exc: BaseException) -> BrokerUnavailableError:
    return BrokerUnavailableError(
        f"no Kafka broker answered at {cfg.bootstrap} (security_protocol={cfg.security_protocol}): {exc}"
    )


class KafkaBus(Bus):
    """Producer, admin client and consumer factory for one cluster. Produce is thread-safe."""

    def __init__(self, cfg: KafkaConfig, client_id: str = "linksyn") -> None:
        self.cfg = cfg
        self._client_id = client_id
        self._errors: list[str] = []
        self._errors_lock = threading.Lock()
        self._consumers: list[KafkaBusConsumer] = []
        self._closed = False
        try:
            self._producer = KafkaProducer(client_id=client_id, **producer_settings(cfg))
        except KafkaTimeoutError as exc:
            raise _unreachable(cfg, exc) from exc
        self._admin: KafkaAdminClient | None = None
        self._lag_reader: KafkaConsumer | None = None
        self._lag_lock = threading.Lock()

    def _admin_client(self) -> KafkaAdminClient:
        if self._admin is None:
            try:
                self._admin = KafkaAdminClient(client_id=f"{self._client_id}-admin", **client_settings(self.cfg))
            except KafkaTimeoutError as exc:
                raise _unreachable(self.cfg, exc) from exc
        return self._admin

    # -- admin ----------------------------------------------------------------------------------------------------

    def ensure_topics(self, partitions: Mapping[str, int]) -> None:
        check_partition_counts(partitions)
        self._check_open()
        admin = self._admin_client()
        existing = set(admin.list_topics())
        missing = {t: n for t, n in partitions.items() if t not in existing}
        if not missing:
            return
        # replication_factor -1: the broker's default.replication.factor (KIP-464), right for any cluster size.
        request = {t: {"num_partitions": n, "replication_factor": -1} for t, n in missing.items()}
        try:
            admin.create_topics(request, wait_for_metadata=True)
        except TopicAlreadyExistsError:
            pass  # another process created one of them meanwhile: left alone, as for any existing topic
        except KafkaError as exc:
            raise BusError(f"could not create topics {missing} on {self.cfg.bootstrap}: {exc}") from exc
        self._wait_for_topics(missing)

    def _wait_for_topics(self, topics: Iterable[str], timeout_s: float = 30.0) -> None:
        """Block until the producer's metadata knows the topics, so the first produce does not stall."""
        deadline = time.monotonic() + timeout_s
        for topic in topics:
            while not self._producer.partitions_for(topic):
                if time.monotonic() > deadline:
                    raise UnknownTopicError(f"topic {topic!r} was created but is not visible on {self.cfg.bootstrap}")
                time.sleep(0.05)

    def partitions_for(self, topic: str) -> int:
        self._check_open()
        found = [t for t in self._admin_client().describe_topics([topic]) if t.get("name") == topic]
        if not found or found[0].get("error_code", 0) != 0 or not found[0].get("partitions"):
            raise UnknownTopicError(f"topic {topic!r} does not exist on {self.cfg.bootstrap}")
        return len(found[0]["partitions"])

    def group_lag(self, group: str, topic: str) -> dict[TopicPartition, int]:
        try:
            return self._group_lag(group, topic)
        except KafkaError as exc:  # a broker that does not answer (down, paused): say so as a bus error
            raise BrokerUnavailableError(
                f"could not read the lag of group {group!r} on {topic!r} at {self.cfg.bootstrap}: {exc!r}"
            ) from exc

    def _group_lag(self, group: str, topic: str) -> dict[TopicPartition, int]:
        self._check_open()
        n = self.partitions_for(topic)
        ktps = [KafkaTopicPartition(topic, p) for p in range(n)]
        try:
            committed = self._admin_client().list_group_offsets({group: ktps}).get(group, {})
        except KafkaError as exc:
            raise BusError(f"could not read group {group!r} offsets on {self.cfg.bootstrap}: {exc}") from exc
        with self._lag_lock:
            if self._lag_reader is None:  # a consumer outside any group, only for log-end offsets
                self._lag_reader = KafkaConsumer(client_id=f"{self._client_id}-lag", group_id=None,
                                                 enable_auto_commit=False, **client_settings(self.cfg))
            reader = self._lag_reader
            ends = dict(reader.end_offsets(ktps))
            # Tansu answers ListOffsets(latest) with the last batch's base offset + 1; a fetch response's high
            # watermark is right. Fetch one record just below the reported end to learn it (a no-op on Kafka).
            reader.assign(ktps)
            for k in ktps:
                reader.seek(k, max(0, ends.get(k, 0) - 1))
            deadline = time.monotonic() + 2.0
            reader.poll(timeout_ms=100, max_records=len(ktps))
            while time.monotonic() < deadline and any(reader.highwater(k) is None for k in ktps if ends.get(k)):
                reader.poll(timeout_ms=100, max_records=len(ktps))
            for k in ktps:
                hw = reader.highwater(k)
                if hw is not None:
                    ends[k] = max(ends.get(k, 0), hw)
        out = {}
        for k in ktps:
            meta = committed.get(k)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            out[TopicPartition(topic, k.partition)] = max(0, ends.get(k, 0) - done)
        return out

    # -- produce --------------------------------------------------------------------------------------------------

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None:
        if self._closed:
            raise BusClosedError("produce on a closed KafkaBus")
        try:
            future = self._producer.send(
                topic, value=value, key=key, headers=list(headers) if headers else None, partition=partition
            )
        except KafkaTimeoutError as exc:
            raise ProduceError(
                f"could not send to {topic!r} on {self.cfg.bootstrap} (does the topic exist? is the broker up?): {exc}"
            ) from exc
        except KafkaError as exc:
            raise ProduceError(f"could not send to {topic!r} on {self.cfg.bootstrap}: {exc}") from exc
        future.add_errback(self._send_failed, topic)

    def _send_failed(self, topic: str, exc: BaseException) -> None:
        with self._errors_lock:
            self._errors.append(f"{topic}: {exc!r}")

    def flush(self, timeout_s: float | None = None) -> None:
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError as exc:
            raise ProduceError(f"records not stored on {self.cfg.bootstrap} within {timeout_s} s: {exc}") from exc
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise ProduceError(
                f"{len(errors)} record(s) could not be stored on {self.cfg.bootstrap}: {errors[0]}{more}"
            )

    # -- consumers ------------------------------------------------------------------------------------------------

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        on_revoke: RebalanceCallback | None = None,
        on_assign: RebalanceCallback | None = None,
    ) -> "KafkaBusConsumer":
        check_consumer_args(group, topics)
        self._check_open()
        c = KafkaBusConsumer(self.cfg, group, tuple(topics), on_revoke, on_assign, self._client_id)
        self._consumers.append(c)
        return c

    def close(self) -> None:
        """Close the consumers made here, flush (raising ProduceError if records could not be stored within
        request_timeout_ms) and release the connections either way."""
        if self._closed:
            return
        self._closed = True
        timeout_s = self.cfg.request_timeout_ms / 1000
        try:
            for c in self._consumers:
                c.close()
            self.flush(timeout_s=timeout_s)
        finally:
            try:
                self._producer.close(timeout=timeout_s)
            except KafkaError as exc:  # the flush above already reported the records; do not mask that
                log.warning("producer for %s did not close cleanly: %s", self.cfg.bootstrap, exc)
            if self._admin is not None:
                self._admin.close()
            if self._lag_reader is not None:
                self._lag_reader.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("KafkaBus is closed")


class _Listener(AsyncConsumerRebalanceListener):
    """Runs the user's callbacks on kafka-python's IO thread and sends the commits they asked for."""

    def __init__(self, owner: "KafkaBusConsumer") -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked):  # type: ignore[no-untyped-def]
        await self.owner._run_callback(self.owner._on_revoke, revoked, commit=True)
        self.owner._forget_positions(revoked)

    async def on_partitions_assigned(self, assigned):  # type: ignore[no-untyped-def]
        await self.owner._run_callback(self.owner._on_assign, assigned, commit=True)

    async def on_partitions_lost(self, lost):  # type: ignore[no-untyped-def]
        # The group has already moved these partitions: commits would be rejected, so they are dropped.
        await self.owner._run_callback(self.owner._on_revoke, lost, commit=False)


class KafkaBusConsumer(Consumer):
    """One group member: a KafkaConsumer subscribed to `topics`."""

    def __init__(
        self,
        cfg: KafkaConfig,
        group: str,
        topics: tuple[str, ...],
        on_revoke: RebalanceCallback | None,
        on_assign: RebalanceCallback | None,
        client_id: str,
    ) -> None:
        self.cfg = cfg
        self.group = group
        self._on_revoke = on_revoke
        self._on_assign = on_assign
        self._deferred: dict[TopicPartition, int] | None = None  # commits collected inside a callback
        self._closed = False
        try:
            self._consumer = KafkaConsumer(client_id=f"{client_id}-{group}", **consumer_settings(cfg, group))
        except KafkaTimeoutError as exc:
            raise _unreachable(cfg, exc) from exc
        self._consumer.subscribe(list(topics), listener=_Listener(self))

    async def _run_callback(self, callback: RebalanceCallback | None, ktps: Iterable[Any], commit: bool) -> None:
        if callback is None:
            return
        tps = {TopicPartition(t.topic, t.partition) for t in ktps}
        self._deferred = {}
        try:
            callback(tps)
        finally:
            offsets, self._deferred = self._deferred, None
        if offsets and commit:
            try:
                # The coroutine behind commit(): awaited here because a blocking commit cannot run on the IO thread.
                await self._consumer._coordinator._commit_offsets_sync_async(_kafka_offsets(offsets))
            except KafkaError as exc:
                log.warning(
                    "group %s: commit during rebalance failed (records will be redelivered): %s", self.group, exc
                )
        elif offsets:
            log.warning("group %s: partitions lost before commit; %d offsets not committed", self.group, len(offsets))

    def _forget_positions(self, ktps: Iterable[Any]) -> None:
        """Revoked partitions leave the assignment now, so one handed back to this member restarts from the group's
        committed offset like on any other member. kafka-python 3's eager rebalance keeps the fetch position of a
        partition that stays with its member, past records the revoke handed back (the consumer loop forgot them):
        they were never read again, and a later commit skipped them (the Java client clears the assignment here)."""
        subscription = self._consumer._subscription
        gone = set(ktps)
        subscription.assign_from_subscribed([tp for tp in subscription.assigned_partitions() if tp not in gone])

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Message]:
        self._check_open()
        batches = self._consumer.poll(timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records)
        out: list[Message] = []
        for ktp, records in batches.items():
            topic, partition = ktp.topic, ktp.partition
            for r in records:
                headers = tuple((k, v if v is not None else b"") for k, v in r.headers) if r.headers else ()
                # A null value (a tombstone, which other clients may produce) arrives as b"": Message.value is bytes.
                value = r.value if r.value is not None else b""
                out.append(build_message(topic, partition, r.offset, r.key, value, headers, r.timestamp))
        return out

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        if self._deferred is not None:  # inside a rebalance callback, on the IO thread
            self._deferred.update(offsets)
            return
        self._check_open()
        owned = self.assignment()
        foreign = [tp for tp in offsets if tp not in owned]
        if foreign:
            raise CommitFailedError(
                f"group {self.group!r}: cannot commit {_names(foreign)}: not assigned to this member "
                f"(a rebalance moved them; their records will be redelivered)"
            )
        try:
            self._consumer.commit(_kafka_offsets(offsets))
        except (KafkaCommitFailedError, IllegalGenerationError, UnknownMemberIdError, RebalanceInProgressError) as exc:
            raise CommitFailedError(f"group {self.group!r}: commit of {_names(offsets)} rejected: {exc}") from exc

    def committed(self, tp: TopicPartition) -> int | None:
        self._check_open()
        self._check_not_in_callback("committed")
        return self._consumer.committed(KafkaTopicPartition(tp.topic, tp.partition))

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        self._check_open()
        self._check_not_in_callback("end_offsets")
        ktps = [KafkaTopicPartition(tp.topic, tp.partition) for tp in partitions]
        if not ktps:
            return {}
        ends = self._consumer.end_offsets(ktps)
        # Tansu (the test broker) answers ListOffsets(latest) with the last *batch's* base offset + 1; the high
        # watermark of the last fetch response is right. Both are lower bounds, so the larger is the better one.
        out = {}
        for k, v in ends.items():
            hw = self._consumer.highwater(k)
            out[TopicPartition(k.topic, k.partition)] = max(v, hw) if hw is not None else v
        return out

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self._check_open()
        tps = list(partitions)
        owned = self.assignment()
        for tp in tps:
            if tp not in owned:
                raise ValueError(f"cannot pause {tp.topic}[{tp.partition}]: not assigned to this member")
        self._consumer.pause(*(KafkaTopicPartition(tp.topic, tp.partition) for tp in tps))

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._check_open()
        self._consumer.resume(*(KafkaTopicPartition(tp.topic, tp.partition) for tp in partitions))

    def paused(self) -> set[TopicPartition]:
        """The partitions paused now."""
        return {TopicPartition(k.topic, k.partition) for k in self._consumer.paused()}

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(k.topic, k.partition) for k in self._consumer.assignment()}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._consumer.close(autocommit=False)

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError(f"consumer of group {self.group!r} is closed")

    def _check_not_in_callback(self, what: str) -> None:
        if self._deferred is not None:
            raise BusError(
                f"group {self.group!r}: {what}() cannot run inside on_revoke/on_assign on KafkaBus (kafka-python runs "
                "them on its IO thread, where a blocking call would deadlock); only commit and assignment can"
            )


def _kafka_offsets(offsets: Mapping[TopicPartition, int]) -> dict[KafkaTopicPartition, OffsetAndMetadata]:
    return {KafkaTopicPartition(tp.topic, tp.partition): OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}


def _names(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(tps))
