"""The message bus: one interface (base.Bus), two implementations with the same semantics.

`make_bus(cfg)` builds the one the config names: `InMemoryBus` for the embedded pipeline and tests, `KafkaBus`
for services running as processes. KafkaBus is imported only when asked for, so the embedded pipeline does not pay
for kafka-python's import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from linksyn.common.bus.base import Bus, Consumer, Message, OutRecord, TopicPartition, murmur2_partition
from linksyn.common.bus.errors import (
    BrokerUnavailableError,
    BusClosedError,
    BusError,
    CommitFailedError,
    ProduceError,
    UnknownTopicError,
)
from linksyn.common.bus.memory import InMemoryBus

if TYPE_CHECKING:
    from linksyn.common.bus.kafka import KafkaBus
    from linksyn.common.config import BusConfig

__all__ = [
    "BrokerUnavailableError",
    "Bus",
    "BusClosedError",
    "BusError",
    "CommitFailedError",
    "Consumer",
    "InMemoryBus",
    "KafkaBus",
    "Message",
    "OutRecord",
    "ProduceError",
    "TopicPartition",
    "UnknownTopicError",
    "make_bus",
    "murmur2_partition",
]


def make_bus(cfg: "BusConfig") -> Bus:
    """The bus `cfg.kind` names: 'memory' (topics get cfg.topics.partitions by default) or 'kafka' (cfg.kafka)."""
    if cfg.kind == "memory":
        return InMemoryBus(default_partitions=cfg.topics.partitions)
    if cfg.kind == "kafka":
        from linksyn.common.bus.kafka import KafkaBus

        return KafkaBus(cfg.kafka)
    raise ValueError(f"unknown bus kind {cfg.kind!r}: expected 'memory' or 'kafka'")


def __getattr__(name: str) -> object:
    if name == "KafkaBus":
        from linksyn.common.bus.kafka import KafkaBus

        return KafkaBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
