"""Errors both buses raise, so callers handle one set whichever bus they run on."""

from __future__ import annotations


class BusError(RuntimeError):
    """Base of every bus error."""


class BusClosedError(BusError):
    """The bus or consumer was used after close()."""


class UnknownTopicError(BusError, LookupError):
    """The topic does not exist."""


class CommitFailedError(BusError):
    """A commit named partitions this member does not own (a rebalance moved them), or an offset out of range."""


class BrokerUnavailableError(BusError):
    """No Kafka broker answered at the bootstrap address."""


class ProduceError(BusError):
    """A produced record could not be stored (raised by flush)."""
