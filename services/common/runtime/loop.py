"""The consumer loop every service runs: poll, batch, process concurrently, produce, commit in order.

Threads:
- the loop thread owns the Consumer (kafka-python consumers are single-threaded) and the OffsetTracker; it polls,
  forms batches, handles completions (one queue item per batch), schedules retries, produces dead letters, commits;
- `workers` worker threads (one for stages with `concurrent_batches = False`) run `stage.process` on a batch and
  produce the outputs of its successful records (Bus.produce is thread-safe), then hand the batch back; for a
  streaming stage (one with `process_stream`) they produce each record's outputs and hand that record back as soon
  as the stage yields its Result, then hand back the batch once the stream ends;
- the rebalance callback (`on_revoke`) may run on the bus's own IO thread (kafka-python 3 does that) while the loop
  thread waits in poll. So the loop's state (tracker, pending records, retries) is guarded by one lock, which is
  never held across a blocking consumer call (poll, commit, lag): a callback waiting for the lock while the loop
  thread waits for the IO thread would deadlock.

Guarantees (DESIGN.md, "Delivery guarantees"):
- at-least-once: a record counts as done only after its outputs were produced (or it was dead-lettered); a commit
  first flushes the bus, so every output of a committed record is stored;
- in-order commits: per partition the commit never passes the lowest unfinished offset (OffsetTracker);
- a record that keeps failing is retried alone with exponential backoff, then dead-lettered and committed past,
  so one poison record never blocks its partition; PermanentError / Result.failed(permanent=True) and records over
  `max_record_bytes` are dead-lettered at once (the latter unparsed, their payload cut to `max_record_bytes`);
- stop(): no more polling; in-flight batches get `shutdown_timeout_s` to finish; what finished is committed, the
  rest (and everything polled but not started) is handed back uncommitted to the next member of the group.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import queue
import threading
import time
from collections import Counter
from typing import Any, Callable, Iterable, Mapping, Sequence

from linksyn.common.bus.base import Bus, Consumer, Message, TopicPartition
from linksyn.common.config import RuntimeConfig, TopicsConfig, redact_url_passwords
from linksyn.common.retry import backoff_delay
from linksyn.common.runtime.metrics import ConsumerMetrics
from linksyn.common.runtime.offsets import OffsetTracker
from linksyn.common.runtime.stage import PermanentError, Result, Stage
from linksyn.v1 import records_pb2

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 1.0
"""How often stage.tick() runs (StageHooks promises about once a second)."""
LAG_INTERVAL_S = 5.0
"""How often the lag gauge is refreshed (on Kafka it costs a round trip per partition)."""
IDLE_POLL_S = 0.2
"""Longest single wait of the loop thread, so completions, stop and drained() requests are seen promptly."""
MAX_POLL_RECORDS = 500
"""Most records taken from the consumer per poll."""
MAX_ERROR_CHARS = 4000
"""Error texts are cut to this length in dead letters."""
MAX_KEY_BYTES = 1024
"""A dead letter keeps at most this much of its record's key (a longer key is produced as its SHA-256)."""


def describe_error(e: BaseException) -> str:
    """`Type: message`, as the dead letter and the logs show it (URL passwords masked)."""
    text = redact_url_passwords(str(e))
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def dead_letter_record(
    m: Message, error: str, attempts: int, service: str, limit: int
) -> tuple[records_pb2.DeadLetter, bytes | None]:
    """The DeadLetter of `m` and the key to produce it with, the two together at most `limit` bytes
    (runtime.max_record_bytes, which stays below the brokers' message.max.bytes): a dead letter the broker refused
    would be tried again forever and hold its partition. The error (URL passwords masked first) and the key are cut
    to a share of the limit, the payload to what is left; a long key is replaced by its SHA-256."""
    error = redact_url_passwords(error)[: min(MAX_ERROR_CHARS, limit // 8)]
    key = m.key or b""
    key_cap = min(MAX_KEY_BYTES, limit // 8)
    produce_key = m.key if len(key) <= key_cap else b"sha256:" + hashlib.sha256(key).hexdigest().encode()
    dl = records_pb2.DeadLetter(
        topic=m.topic[:256], partition=m.partition, offset=m.offset, key=key[:key_cap], error=error,
        attempts=attempts, service=service, failed_unix_ms=int(time.time() * 1000),
    )
    room = limit - dl.ByteSize() - len(produce_key or b"") - 6  # 6: the payload field's tag and length
    dl.payload = m.value[: max(0, room)]
    return dl, produce_key


class OutputsLostError(RuntimeError):
    """The bus could not store produced outputs (flush failed). Records already marked done may have lost their
    outputs, and the loop cannot tell which: it stops without committing them, so they are redelivered."""


class _Batch:
    """Records handed to a worker together, with each record's failed attempts so far."""

    __slots__ = ("msgs", "tps", "attempts", "gens", "results", "error", "permanent", "seconds", "yielded")

    def __init__(
        self, msgs: list[Message], tps: list[TopicPartition], attempts: list[int], gens: dict[TopicPartition, int]
    ) -> None:
        self.msgs = msgs
        self.tps = tps
        self.attempts = attempts
        self.gens = gens
        """Partition generations when dispatched: a revoke in between makes the outcome stale (ignored)."""
        self.results: list[Result] | None = None
        self.error: str | None = None
        """Set when process() raised (the whole batch failed)."""
        self.permanent = False
        self.seconds = 0.0
        self.yielded: set[int] | None = None
        """Streaming stages: indices whose Result was already handed back one by one (None: not streamed)."""


class _Part:
    """One record of a streamed batch, handed back as soon as the stage yielded its Result (outputs produced)."""

    __slots__ = ("batch", "index", "result")

    def __init__(self, batch: _Batch, index: int, result: Result) -> None:
        self.batch = batch
        self.index = index
        self.result = result


class ConsumerLoop:
    """Runs one Stage against the bus as a member of consumer group `group`.

    `start()` launches it on its own thread; `stop()` shuts it down cleanly. `stats()`, `idle()` and `drained()`
    may be called from any thread.
    """

    def __init__(
        self, bus: Bus, stage: Stage, cfg: RuntimeConfig, topics: TopicsConfig, group: str
    ) -> None:
        if not stage.input_topics:
            raise ValueError(f"stage {stage.name!r} has no input topics: nothing for a consumer loop to read")
        self.bus = bus
        self.stage = stage
        self.cfg = cfg
        self.topics = topics
        self.group = group
        self.service = stage.name
        self.concurrent = bool(getattr(stage, "concurrent_batches", True))
        self.workers = cfg.workers if self.concurrent else 1
        self._hook_committable: Callable[[Mapping[TopicPartition, int]], Mapping[TopicPartition, int]] | None = (
            getattr(stage, "committable", None)
        )
        self._hook_tick: Callable[[], None] | None = getattr(stage, "tick", None)
        self._hook_close: Callable[[], None] | None = getattr(stage, "close", None)
        self._hook_assign: Callable[[set[TopicPartition]], None] | None = getattr(stage, "on_assign", None)
        self._hook_revoke: Callable[[set[TopicPartition]], None] | None = getattr(stage, "on_revoke", None)
        self._process_stream: Callable[[Sequence[Message]], Iterable[tuple[int, Result]]] | None = getattr(
            stage, "process_stream", None
        )

        self._metrics = ConsumerMetrics(self.service)
        self._tracker = OffsetTracker()
        self._consumer: Consumer | None = None
        self._pending: list[tuple[Message, int]] = []
        """Polled and not yet dispatched: (message, failed attempts)."""
        self._pending_since = 0.0
        self._retries: list[tuple[float, int, Message, int, int, str | None]] = []
        """Heap of (due, seq, message, failed attempts, generation, dead-letter error or None for a retry)."""
        self._retry_seq = 0
        self._work: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._completions: queue.SimpleQueue[_Batch | _Part] = queue.SimpleQueue()
        self._running_batches = 0
        self._paused = False
        self._assigned_while_paused = False
        self._committed: dict[TopicPartition, int] = {}
        self._state = threading.RLock()
        self._tps: dict[tuple[str, int], TopicPartition] = {}
        """TopicPartition per (topic, partition): Message.tp builds a new frozen dataclass on every access."""
        """Guards the tracker, pending records, retries and committed offsets (see the module docstring)."""

        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._lag_by_topic: dict[str, int] = {}
        self._lag_cond = threading.Condition()
        self._lag_seq = 0
        self._lag_wanted = 0
        self._drained_at_lag = False

        self._stopping = threading.Event()
        self._started = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker_threads: list[threading.Thread] = []
        self.error: BaseException | None = None
        """Set if the loop thread died of an unexpected exception."""
        self._fatal: OutputsLostError | None = None
        """Set when a flush failed: nothing may be committed any more (see OutputsLostError)."""

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> "ConsumerLoop":
        """Start the worker threads and the loop thread (which joins the consumer group)."""
        if self._thread is not None:
            raise RuntimeError(f"consumer loop of {self.service!r} already started")
        for i in range(self.workers):
            t = threading.Thread(target=self._work_forever, name=f"{self.service}-worker-{i}", daemon=True)
            t.start()
            self._worker_threads.append(t)
        self._thread = threading.Thread(target=self._run, name=f"{self.service}-consumer", daemon=True)
        self._thread.start()
        return self

    def wait_started(self, timeout: float | None = None) -> bool:
        """Wait until the consumer exists (group membership is settled by the first polls)."""
        return self._started.wait(timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop polling, let in-flight work finish (up to runtime.shutdown_timeout_s), commit, flush, close.
        Returns True when the loop has finished (False if it is still shutting down after `timeout`)."""
        self._stopping.set()
        if self._thread is None:
            return True
        if timeout is None:
            timeout = self.cfg.shutdown_timeout_s + 30.0
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def finished(self) -> bool:
        """True once the loop thread has ended (after stop(), or after a fatal error: see `error`)."""
        return self._finished.is_set()

    def wait_finished(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    # ---- observation (any thread) ----------------------------------------------------------------------------

    def stats(self) -> dict[str, float]:
        """Counters: records_in/out/failed, retries, dead_letters, batches, commits, handed_back (also per topic,
        as `records_in{topic=...}`), and the gauges in_flight and lag (last measured)."""
        with self._counts_lock:
            out: dict[str, float] = dict(self._counts)
        for k in ("records_in", "records_out", "records_failed", "retries", "dead_letters", "batches", "commits"):
            out.setdefault(k, 0)
        out["in_flight"] = self._tracker.in_flight()
        out["lag"] = sum(self._lag_by_topic.values())
        return out

    def idle(self) -> bool:
        """Nothing in flight: no record polled and unfinished, no batch running."""
        return self._tracker.in_flight() == 0 and self._running_batches == 0

    def drained(self, timeout: float = 5.0) -> bool:
        """Idle and the group's lag on this member's partitions is 0 (everything read, finished and committed),
        measured now by the loop thread. False while no partition is assigned (the member has not joined yet)."""
        if not self.idle() or self._finished.is_set():
            return False
        with self._lag_cond:
            self._lag_wanted = target = self._lag_seq + 1
            ok = self._lag_cond.wait_for(lambda: self._lag_seq >= target or self._finished.is_set(), timeout)
            return ok and self._lag_seq >= target and self._drained_at_lag

    # ---- the loop thread -------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._consumer = self.bus.consumer(
                self.group, list(self.stage.input_topics), on_revoke=self._on_revoke, on_assign=self._on_assign
            )
            self._started.set()
            now = time.monotonic()
            self._next_commit = now + self.cfg.commit_interval_s
            self._next_tick = now + TICK_INTERVAL_S
            self._next_lag = now
            while not self._stopping.is_set():
                self._iterate()
                if self._fatal is not None:
                    raise self._fatal
            self._shutdown()
            if self._fatal is not None:
                raise self._fatal
        except BaseException as e:  # noqa: BLE001 - the loop must report any death, then release the consumer
            self.error = e
            log.exception("consumer loop of %s (group %s) failed: %s", self.service, self.group, describe_error(e))
            if self._consumer is not None:
                try:
                    self._consumer.close()
                except Exception:  # noqa: BLE001
                    log.exception("closing the consumer of %s after a failure failed", self.service)
        finally:
            for _ in self._worker_threads:
                self._work.put(None)
            self._metrics.in_flight.set(0)
            self._finished.set()
            self._started.set()
            with self._lag_cond:
                self._lag_cond.notify_all()

    def _iterate(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        with self._state:
            self._drain_completions()
            now = time.monotonic()
            self._dispatch_due_retries(now)
            capacity = self.cfg.max_in_flight - self._tracker.in_flight()
            timeout = self._wait_timeout(now)
        if capacity <= 0:
            # Full: pause every partition (membership is kept) and wait for a batch to finish; the zero-timeout
            # poll keeps the member alive without reading anything.
            self._set_paused(True)
            try:
                done = self._completions.get(timeout=timeout)
            except queue.Empty:
                pass
            else:
                with self._state:
                    self._on_completion(done)
            msgs = consumer.poll(max_records=1, timeout_s=0)
        else:
            self._set_paused(False)
            msgs = consumer.poll(max_records=min(capacity, MAX_POLL_RECORDS), timeout_s=timeout)
        now = time.monotonic()
        with self._state:
            if msgs:
                self._accept(msgs, now)
            self._dispatch_batches(now)
            self._metrics.in_flight.set(self._tracker.in_flight())
        self._periodic(now)

    def _wait_timeout(self, now: float) -> float:
        t = min(IDLE_POLL_S, self._next_commit - now, self._next_tick - now)
        if self._pending:
            t = min(t, self._pending_since + self.cfg.batch_wait_s - now)
        if self._retries:
            t = min(t, self._retries[0][0] - now)
        return max(0.0, t)

    def _set_paused(self, paused: bool) -> None:
        consumer = self._consumer
        assert consumer is not None
        if paused:
            # Partitions assigned since the last pause start unpaused: pause again after an assignment.
            if not self._paused or self._assigned_while_paused:
                self._assigned_while_paused = False
                consumer.pause(consumer.assignment())
        elif self._paused:
            consumer.resume(consumer.assignment())
        self._paused = paused

    def _tp(self, m: Message) -> TopicPartition:
        key = (m.topic, m.partition)
        tp = self._tps.get(key)
        if tp is None:
            tp = self._tps[key] = TopicPartition(m.topic, m.partition)
        return tp

    def _accept(self, msgs: Sequence[Message], now: float) -> None:
        tracker = self._tracker
        tp_of = self._tp
        limit = self.cfg.max_record_bytes
        per_topic: Counter[str] = Counter()
        if not self._pending:
            self._pending_since = now
        pending = self._pending
        for m in msgs:
            tp = tp_of(m)
            try:
                tracker.add(tp, m.offset)
            except ValueError:
                # Delivered again while this member still tracks it (the bus rewound): the first copy is in
                # flight or done already, so this one is dropped.
                log.debug("dropping redelivered %s[%d]@%d", m.topic, m.partition, m.offset)
                continue
            per_topic[m.topic] += 1
            if len(m.value) > limit:
                self._dead_letter(
                    m,
                    f"record of {len(m.value)} bytes exceeds runtime.max_record_bytes={limit} (not parsed; the "
                    "dead letter keeps as much of its start as fits that limit)",
                    attempts=0,
                )
            else:
                pending.append((m, 0))
        with self._counts_lock:
            for topic, n in per_topic.items():
                self._counts["records_in"] += n
                self._counts[f"records_in{{topic={topic}}}"] += n
        for topic, n in per_topic.items():
            self._metrics.records_in(topic).inc(n)

    def _dispatch_batches(self, now: float) -> None:
        pending = self._pending
        if not pending:
            return
        size = self.cfg.batch_size
        full = len(pending) - len(pending) % size
        for i in range(0, full, size):
            self._submit(pending[i : i + size])
        rest = pending[full:] if full else pending
        if rest and now - self._pending_since >= self.cfg.batch_wait_s:
            self._submit(rest)
            rest = []
        self._pending = rest

    def _submit(self, items: list[tuple[Message, int]]) -> None:
        gen = self._tracker.generation
        tp_of = self._tp
        msgs = [m for m, _ in items]
        tps = [tp_of(m) for m in msgs]
        gens = {tp: gen(tp) for tp in set(tps)}
        self._running_batches += 1
        self._work.put(_Batch(msgs, tps, [a for _, a in items], gens))

    def _dispatch_due_retries(self, now: float) -> None:
        retries = self._retries
        while retries and retries[0][0] <= now:
            _, _, m, attempts, generation, dl_error = heapq.heappop(retries)
            if self._tracker.generation(self._tp(m)) != generation:
                continue  # its partition was revoked meanwhile
            if dl_error is None:
                self._submit([(m, attempts)])
            else:
                self._dead_letter(m, dl_error, attempts)

    def _drain_completions(self) -> None:
        while True:
            try:
                b = self._completions.get_nowait()
            except queue.Empty:
                return
            self._on_completion(b)

    def _on_completion(self, item: _Batch | _Part) -> None:
        if isinstance(item, _Part):
            self._on_part(item)
            return
        b = item
        self._running_batches -= 1
        self._metrics.processing_seconds.observe(b.seconds)
        tracker = self._tracker
        stale = {tp for tp, g in b.gens.items() if tracker.generation(tp) != g}
        with self._counts_lock:
            self._counts["batches"] += 1
        if b.results is None:
            assert b.error is not None
            # Streamed records already handed back are settled; the rest failed with the batch.
            done = b.yielded or set()
            live = [(m, a) for i, (m, tp, a) in enumerate(zip(b.msgs, b.tps, b.attempts))
                    if tp not in stale and i not in done]
            if len(b.msgs) == 1:
                for m, a in live:
                    self._record_failed(m, a, b.error, b.permanent)
            elif live and not self._stopping.is_set():
                # One bad record must not cost the others an attempt: run each alone, counting nothing yet.
                with self._counts_lock:
                    self._counts["batches_split"] += 1
                for item in live:
                    self._submit([item])
            return
        out_topics: Counter[str] = Counter()
        for m, tp, a, r in zip(b.msgs, b.tps, b.attempts, b.results):
            if tp in stale:
                continue
            self._settle(m, tp, a, r, out_topics)
        self._count_out(out_topics)

    def _on_part(self, part: _Part) -> None:
        b, i = part.batch, part.index
        tp = b.tps[i]
        if self._tracker.generation(tp) != b.gens[tp]:
            return  # its partition was revoked meanwhile: the record was handed back
        out_topics: Counter[str] = Counter()
        self._settle(b.msgs[i], tp, b.attempts[i], part.result, out_topics)
        self._count_out(out_topics)

    def _settle(self, m: Message, tp: TopicPartition, attempts: int, r: Result, out_topics: Counter[str]) -> None:
        """One record's Result: done (its outputs were produced), or failed (retried or dead-lettered)."""
        if r.error is None:
            self._tracker.done(tp, m.offset)
            for o in r.outputs:
                out_topics[o.topic] += 1
        else:
            self._record_failed(m, attempts, r.error, r.permanent)

    def _count_out(self, out_topics: Counter[str]) -> None:
        if out_topics:
            with self._counts_lock:
                for topic, n in out_topics.items():
                    self._counts["records_out"] += n
                    self._counts[f"records_out{{topic={topic}}}"] += n
            for topic, n in out_topics.items():
                self._metrics.records_out(topic).inc(n)

    def _record_failed(self, m: Message, failed_before: int, error: str, permanent: bool) -> None:
        attempts = failed_before + 1
        self._metrics.records_failed(m.topic).inc()
        with self._counts_lock:
            self._counts["records_failed"] += 1
        if permanent or attempts >= self.cfg.retry.max_attempts:
            self._dead_letter(m, error, attempts)
        elif not self._stopping.is_set():  # when stopping, the record is handed back instead
            delay = backoff_delay(attempts, self.cfg.retry)
            self._schedule(m, attempts, delay, dl_error=None)
            with self._counts_lock:
                self._counts["retries"] += 1

    def _schedule(self, m: Message, attempts: int, delay: float, dl_error: str | None) -> None:
        self._retry_seq += 1
        item = (time.monotonic() + delay, self._retry_seq, m, attempts, self._tracker.generation(self._tp(m)), dl_error)
        heapq.heappush(self._retries, item)

    def _dead_letter(self, m: Message, error: str, attempts: int) -> None:
        dl, key = dead_letter_record(m, error, attempts, self.service, self.cfg.max_record_bytes)
        error = dl.error
        try:
            self.bus.produce(self.topics.dead_letter, dl.SerializeToString(), key=key)
        except Exception as e:  # noqa: BLE001 - the record stays in flight and the dead letter is tried again
            log.error(
                "producing the dead letter of %s[%d]@%d failed (%s); trying again later",
                m.topic, m.partition, m.offset, describe_error(e),
            )
            self._schedule(m, attempts, self.cfg.retry.backoff_max_s, dl_error=error)
            return
        log.warning(
            "dead-lettered %s[%d]@%d after %d attempt(s): %s", m.topic, m.partition, m.offset, attempts, error
        )
        self._tracker.done(self._tp(m), m.offset)
        self._metrics.dead_letters(m.topic).inc()
        with self._counts_lock:
            self._counts["dead_letters"] += 1
            self._counts[f"dead_letters{{topic={m.topic}}}"] += 1

    def _periodic(self, now: float) -> None:
        """Commits, ticks and lag: on the loop thread, without the state lock (they call the consumer or the stage)."""
        if now >= self._next_commit:
            self._next_commit = now + self.cfg.commit_interval_s
            self._commit_safely()
        if now >= self._next_tick:
            self._next_tick = now + TICK_INTERVAL_S
            if self._hook_tick is not None:
                try:
                    self._hook_tick()
                except Exception as e:  # noqa: BLE001 - a failing tick is reported, the loop goes on
                    log.exception("stage %s tick() failed: %s", self.service, describe_error(e))
        if now >= self._next_lag or self._lag_wanted > self._lag_seq:
            self._next_lag = now + LAG_INTERVAL_S
            self._measure_lag()

    def _measure_lag(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        if self._lag_wanted > self._lag_seq:
            # drained() asked: commit first, so finished work counts as consumed.
            self._commit_safely()
        try:
            lag = consumer.lag()
        except Exception as e:  # noqa: BLE001 - lag is observability; a broker hiccup must not stop the loop
            log.warning("measuring the lag of %s failed: %s", self.service, describe_error(e))
            return
        by_topic = {t: 0 for t in self.stage.input_topics}
        for tp, n in lag.items():
            by_topic[tp.topic] = by_topic.get(tp.topic, 0) + n
        for topic, n in by_topic.items():
            self._metrics.lag(topic).set(n)
        self._lag_by_topic = by_topic
        with self._state, self._lag_cond:
            self._drained_at_lag = bool(lag) and sum(by_topic.values()) == 0 and self.idle() and not self._pending
            self._lag_seq += 1
            self._lag_cond.notify_all()

    # ---- commits ---------------------------------------------------------------------------------------------

    def _commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        assert consumer is not None
        with self._state:
            done = self._tracker.committable(partitions)
            if self._hook_committable is not None and done:
                allowed = self._hook_committable(dict(done))
                # Never past what is done, whatever the stage says.
                done = {tp: min(off, done[tp]) for tp, off in allowed.items() if tp in done}
            offsets = {tp: off for tp, off in done.items() if off > self._committed.get(tp, -1)}
        if not offsets or self._fatal is not None:
            return
        try:
            self.bus.flush()  # outputs of every finished record stored before its offset is committed
        except Exception as e:  # noqa: BLE001 - which outputs were lost is unknown: commit nothing more
            self._fatal = OutputsLostError(
                f"{self.service}: flushing outputs failed ({describe_error(e)}); stopping without committing, "
                "so uncommitted records are redelivered"
            )
            log.error("%s", self._fatal)
            return
        consumer.commit(offsets)
        with self._state:
            self._committed.update(offsets)
        with self._counts_lock:
            self._counts["commits"] += 1

    def _commit_safely(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        try:
            self._commit(partitions)
        except Exception as e:  # noqa: BLE001 - a failed commit is retried next time; records may be redelivered
            log.warning("commit of %s (group %s) failed: %s", self.service, self.group, describe_error(e))

    def _on_revoke(self, tps: set[TopicPartition]) -> None:
        """Partitions are taken away: commit what is finished on them, then forget them. May run on the bus's IO
        thread, where only commit and assignment may be called on the consumer (KafkaBus defers the commit)."""
        with self._state:
            self._drain_completions()
            self._commit_safely(tps)
            dropped = self._tracker.forget(tps)
            for tp in tps:
                self._committed.pop(tp, None)
            if self._pending:
                self._pending = [(m, a) for m, a in self._pending if self._tp(m) not in tps]
        if dropped:
            log.info("%s: %d unfinished record(s) of revoked partitions handed back", self.service, dropped)
            with self._counts_lock:
                self._counts["handed_back"] += dropped
        self._call_rebalance_hook(self._hook_revoke, "on_revoke", tps)  # after the commit: it forgets their state

    def _on_assign(self, tps: set[TopicPartition]) -> None:
        # New partitions start unpaused; when the loop is full it re-pauses everything on its next round.
        with self._state:
            for tp in tps:
                self._committed.pop(tp, None)
            self._assigned_while_paused = True
        self._call_rebalance_hook(self._hook_assign, "on_assign", tps)

    def _call_rebalance_hook(self, hook: Callable[[set[TopicPartition]], None] | None, what: str,
                             tps: set[TopicPartition]) -> None:
        if hook is None or not tps:
            return
        try:
            hook(set(tps))
        except Exception as e:  # noqa: BLE001 - a failing hook is reported; the rebalance must go on
            log.exception("stage %s %s() failed: %s", self.service, what, describe_error(e))

    def _shutdown(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        with self._state:
            # Polled-but-unstarted records and pending retries stay unfinished in the tracker: handed back.
            self._pending = []
            self._retries = []
        self._set_paused(True)
        deadline = time.monotonic() + self.cfg.shutdown_timeout_s
        while self._running_batches > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                done = self._completions.get(timeout=min(IDLE_POLL_S, left))
            except queue.Empty:
                pass
            else:
                with self._state:
                    self._on_completion(done)
            consumer.poll(max_records=1, timeout_s=0)  # keep the membership alive while waiting
        with self._state:
            self._drain_completions()
        if self._running_batches:
            log.warning(
                "%s: %d batch(es) still running after runtime.shutdown_timeout_s=%s; their records are handed back "
                "uncommitted and stage.close() is skipped",
                self.service, self._running_batches, self.cfg.shutdown_timeout_s,
            )
        elif self._hook_close is not None:
            try:
                self._hook_close()
            except Exception as e:  # noqa: BLE001
                log.exception("stage %s close() failed: %s", self.service, describe_error(e))
        self._commit_safely()
        if self._fatal is None:
            self.bus.flush()
        consumer.close()
        with self._counts_lock:
            self._counts["handed_back"] += self._tracker.in_flight()
        log.info("%s consumer stopped (%s)", self.service, _format_counts(self.stats()))

    # ---- worker threads --------------------------------------------------------------------------------------

    def _work_forever(self) -> None:
        while True:
            b = self._work.get()
            if b is None:
                return
            self._run_batch(b)
            self._completions.put(b)

    def _run_batch(self, b: _Batch) -> None:
        if self._process_stream is not None:
            self._run_stream(b, self._process_stream)
            return
        t0 = time.perf_counter()
        try:
            results = self.stage.process(b.msgs)
            if len(results) != len(b.msgs):
                raise RuntimeError(
                    f"stage {self.service!r} returned {len(results)} results for a batch of {len(b.msgs)} records"
                )
        except PermanentError as e:
            b.error, b.permanent = describe_error(e), True
            results = None
        except Exception as e:  # noqa: BLE001 - any failure of the stage is the record's failure
            b.error = describe_error(e)
            results = None
        b.seconds = time.perf_counter() - t0
        if results is None:
            return
        results = list(results)
        outputs = [o for r in results if r.error is None for o in r.outputs]
        if outputs:
            try:
                self.bus.produce_many(outputs)  # one call per batch: the in-memory bus takes its lock once
            except Exception:  # noqa: BLE001 - find the records whose outputs fail; they are retried
                for i, r in enumerate(results):
                    if r.error is None and r.outputs:
                        results[i] = self._produce(r)
        b.results = results

    def _produce(self, r: Result) -> Result:
        """Produce one record's outputs; a failure to produce fails the record (it is retried)."""
        try:
            self.bus.produce_many(r.outputs)
        except Exception as e:  # noqa: BLE001
            return Result.failed(f"producing outputs failed: {describe_error(e)}")
        return r

    def _run_stream(
        self, b: _Batch, process_stream: Callable[[Sequence[Message]], Iterable[tuple[int, Result]]]
    ) -> None:
        """A streaming stage: each record's outputs are produced, and the record handed back to the loop thread, as
        soon as the stage yields its Result; records the stream never yielded fail with the batch."""
        t0 = time.perf_counter()
        n = len(b.msgs)
        yielded: set[int] = set()
        b.yielded = yielded
        try:
            for i, r in process_stream(b.msgs):
                if not 0 <= i < n or i in yielded:
                    raise RuntimeError(
                        f"stage {self.service!r} yielded a result for record {i} of a batch of {n} "
                        + ("twice" if i in yielded else "(no such record)")
                    )
                if r.error is None and r.outputs:
                    r = self._produce(r)
                yielded.add(i)
                self._completions.put(_Part(b, i, r))
            if len(yielded) < n:
                raise RuntimeError(f"stage {self.service!r} yielded no result for {n - len(yielded)} of {n} records")
        except PermanentError as e:
            b.error, b.permanent = describe_error(e), True
        except Exception as e:  # noqa: BLE001 - any failure of the stage is the unfinished records' failure
            b.error = describe_error(e)
        b.seconds = time.perf_counter() - t0
        if b.error is None:
            b.results = []  # everything was handed back record by record


def _format_counts(stats: Mapping[str, Any]) -> str:
    keys = ("records_in", "records_out", "records_failed", "retries", "dead_letters", "commits", "handed_back")
    return ", ".join(f"{k}={int(stats.get(k, 0))}" for k in keys)
