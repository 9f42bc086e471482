"""Configuration shared by every service: the bus, topics, the consumer runtime and the service ports.

Each service's own settings live beside it (`linksyn.<service>.config`); `linksyn.config` assembles them into
the one `LinksynConfig` that a YAML file and `LINKSYN_*` environment variables fill.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    from linksyn.common.spend.config import BudgetConfig


class Section(BaseModel):
    """Base of every config section: unknown keys are errors (a typo must not be silently ignored), and so are
    infinite and NaN numbers (no setting means one; a NaN share or exponent would poison every computation)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class TopicsConfig(Section):
    """Topic names and partition counts. Partitions bound the replicas that can share a stage."""

    seeds: str = "linksyn.seeds"
    """Raw seed QA pairs (Seed records)."""
    seed_kps: str = "linksyn.seed-kps"
    """Annotated seeds (AnnotatedSeed records)."""
    paths: str = "linksyn.paths"
    """Walk paths for synthesis (WalkPath records)."""
    synth_qa: str = "linksyn.synth-qa"
    """Synthesized QA (SynthQA records)."""
    probes: str = "linksyn.probes"
    """Probe reports from the trainer (ProbeReport records)."""
    dead_letter: str = "linksyn.dead-letter"
    """Records that kept failing (DeadLetter records)."""
    usage: str = "linksyn.usage"
    """LLM spend of every replica (UsageReport records, cumulative, keyed per replica and model; compact it)."""
    partitions: int = Field(default=12, ge=1)
    """Partitions of each data topic when linksyn creates it; keep >= the largest replica count of any stage."""
    control_partitions: int = Field(default=1, ge=1)
    """Partitions of probes, dead-letter and usage (low volume; one keeps them ordered)."""

    def all_partitions(self) -> dict[str, int]:
        """Topic name -> partitions, for Bus.ensure_topics."""
        data = {t: self.partitions for t in (self.seeds, self.seed_kps, self.paths, self.synth_qa)}
        control = (self.probes, self.dead_letter, self.usage)
        return data | {t: self.control_partitions for t in control}


class KafkaConfig(Section):
    """Connection to a Kafka-protocol cluster (used when bus.kind is 'kafka')."""

    bootstrap: str = "localhost:9092"
    """Comma-separated host:port list of bootstrap brokers."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """Kafka security protocol."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    """SASL mechanism when security_protocol is SASL_*."""
    sasl_username: str | None = None
    """SASL user; from a Kubernetes Secret in the chart."""
    sasl_password: SecretStr | None = None
    """SASL password (never printed: `config show` masks it)."""
    ssl_cafile: str | None = None
    """CA bundle to verify the brokers."""
    ssl_certfile: str | None = None
    """Client certificate for mutual TLS."""
    ssl_keyfile: str | None = None
    """Client key for mutual TLS."""
    session_timeout_ms: int = 10_000
    """Group session timeout; a dead member's partitions move after this long."""
    heartbeat_interval_ms: int = 1_000
    """Heartbeat period (a third of the session timeout or less)."""
    max_poll_interval_ms: int = 300_000
    """Longest time between polls before the member is considered stuck; above the longest batch."""
    request_timeout_ms: int = 30_000
    """Client request timeout."""
    linger_ms: int = 5
    """Producer batching delay."""
    max_request_size: int = 8 * 1024 * 1024
    """Largest produce request in bytes (bounds the largest record)."""
    compression_type: Literal["none", "gzip", "lz4", "zstd"] = "zstd"
    """Codec of produced record batches (kafka-python's; lz4 needs the `lz4` package, zstd `zstandard`, both linksyn
    dependencies). Consumers read any codec. bench/scale.py measures bytes per record per topic with each."""


class BusConfig(Section):
    """Which bus carries records between stages."""

    kind: Literal["memory", "kafka"] = "memory"
    """'memory' runs every stage in one process (`linksyn run`); 'kafka' connects to brokers (`linksyn serve`)."""
    kafka: KafkaConfig = KafkaConfig()
    """Kafka connection settings."""
    topics: TopicsConfig = TopicsConfig()
    """Topic names and partition counts."""


StageName = Literal["extractor", "graph", "sampler", "synth", "sink", "trainer"]


class RetryConfig(Section):
    """How often to try, and how long to wait between tries: initial, doubling, capped (linksyn.common.retry)."""

    max_attempts: int = Field(default=3, ge=1)
    """Attempts in all (the first one included) before giving up."""
    backoff_initial_s: float = Field(default=0.2, ge=0)
    """Delay before the first retry; it doubles with each further attempt."""
    backoff_max_s: float = Field(default=10.0, ge=0)
    """Longest delay between attempts (also caps a server's Retry-After)."""


class StageRuntime(Section):
    """Consumer-loop settings of one stage that replace `runtime`'s (in `linksyn run` every stage shares one config;
    `linksyn serve NAME` applies NAME's entry too, so one file can serve every service). Unset fields keep
    runtime's value."""

    max_in_flight: int | None = Field(default=None, ge=1)
    """Records being processed at once by this stage."""
    batch_size: int | None = Field(default=None, ge=1)
    """Records per batch of this stage."""
    workers: int | None = Field(default=None, ge=1)
    """Batches of this stage running at once."""


class RuntimeConfig(Section):
    """The consumer loop every service uses."""

    max_in_flight: int = Field(default=256, ge=1)
    """Records being processed at once (across batches); polling pauses above this."""
    batch_size: int = Field(default=64, ge=1)
    """Records handed to a stage's processor at once (an LLM batch, a graph ingest batch)."""
    batch_wait_s: float = Field(default=0.05, ge=0)
    """Longest wait to fill a batch before processing a partial one."""
    workers: int = Field(default=4, ge=1)
    """Threads running batches concurrently (out-of-order completion; commits stay in order)."""
    retry: RetryConfig = RetryConfig()
    """Attempts per record before it goes to the dead-letter topic, and the backoff between them (a failing record is
    retried alone)."""
    commit_interval_s: float = Field(default=1.0, gt=0)
    """How often finished offsets are committed."""
    max_record_bytes: int = Field(default=1_000_000, ge=1024)
    """Records larger than this (bytes) are dead-lettered unread, with the reason "record of N bytes exceeds
    runtime.max_record_bytes=M". Every dead letter, key and error included, is cut to fit this size, so it fits
    where records fit. Also the largest seed row `linksyn run`/`push` accept. Keep it below the brokers'
    message.max.bytes."""
    shutdown_timeout_s: float = Field(default=30.0, ge=0)
    """On SIGTERM, how long in-flight work may take to finish before it is handed back uncommitted."""
    stages: dict[StageName, StageRuntime] = {}
    """Per-stage replacements of max_in_flight / batch_size / workers, e.g.
    `{synth: {batch_size: 4, workers: 2}}`. A streaming stage (synth, extractor in llm mode) hands each record on as
    soon as it is done, so its batch size is how many LLM requests it sends at once; other stages produce a batch's
    results when its last record is done. The bulk stages (graph, extractor's keyphrase mode) want large batches."""

    def for_stage(self, name: str) -> "RuntimeConfig":
        """These settings with the stage's replacements applied."""
        over = self.stages.get(name)  # type: ignore[call-overload]
        if over is None:
            return self
        return self.model_copy(update={k: v for k, v in over.model_dump().items() if v is not None})


class ServerConfig(Section):
    """Network endpoints of one service process."""

    host: str = "0.0.0.0"
    """Interface to bind the gRPC and metrics servers to."""
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    """gRPC port (0 = any free port)."""
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    """Prometheus /metrics port (0 = any free port)."""
    grpc_token: SecretStr | None = None
    """If set, every gRPC call must carry `authorization: Bearer <token>` (health checks excepted). Required by a
    trainer whose launcher is 'kubernetes' (its StartRun creates Jobs)."""
    tls_cert: str | None = None
    """PEM certificate file for gRPC TLS; with tls_key, the server only accepts TLS."""
    tls_key: str | None = None
    """PEM key file for gRPC TLS."""
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest gRPC request message the server reads (bytes); a larger one is refused with RESOURCE_EXHAUSTED
    before it is parsed. Query fields have their own, smaller limits (e.g. graph.max_kp_chars for KP texts)."""
    max_concurrent_calls: int = Field(default=12, ge=1)
    """API calls (every method but health and reflection) in progress at once; one more is refused at once with
    RESOURCE_EXHAUSTED. Each holds a server thread while it runs (a snapshot stream for as long as it streams)."""
    max_open_streams: int = Field(default=2, ge=1)
    """Reflection streams and health Watch streams in progress at once; one more is refused with
    RESOURCE_EXHAUSTED. Kept apart from the API calls, so streams nobody closes cannot take the threads that API
    calls and health checks need."""
    reflection: bool = False
    """Serve gRPC server reflection (`grpcurl list`, `linksyn status` naming the service). Off by default; with
    grpc_token set, reflection calls need the token like every API call."""


class SharedConfig(Protocol):
    """The sections every service reads besides its own (`linksyn.config.LinksynConfig` has them). A service's
    wiring gets its own section and these, never another service's section."""

    bus: BusConfig
    runtime: RuntimeConfig
    server: ServerConfig
    budget: BudgetConfig


URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@:\s]*):[^/\s]*@")
"""user:password@ in a URL (an `openai:` model spec, a snapshot_url such as s3:// or postgres://); the password
runs to the last '@' before the host (an unencoded '@' in it is masked too)."""


def redact_url_passwords(text: str) -> str:
    """`text` with the password of every URL's user:password@ part masked (the user name stays, for debugging).
    Redact before cutting a text: a cut inside the password would leave no '@' to find it by."""
    return URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:**********@", text)


class URLPasswordFilter(logging.Filter):
    """A logging filter that masks URL passwords in every record's message and traceback (installed on the CLI's
    log handlers: a message built from an exception or a spec is masked whatever code logged it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact_url_passwords(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_url_passwords(record.exc_text)
        return True
