"""The whole configuration: one YAML file plus `LINKSYN_*` environment overrides.

Precedence, highest first: environment (`LINKSYN_<SECTION>__<FIELD>`, e.g. `LINKSYN_BUS__KAFKA__BOOTSTRAP`),
the YAML file (`--config FILE` or `LINKSYN_CONFIG`), the defaults written here. Every field is documented where it
is declared; `linksyn config show` prints the effective values with secrets masked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml
from linksyn.common.config import (
    BusConfig,
    RuntimeConfig,
    ServerConfig,
    redact_url_passwords,
)
from linksyn.common.spend.config import BudgetConfig
from linksyn.common.yaml_file import read_yaml
from linksyn.extractor.config import ExtractorConfig
from linksyn.graph.config import GraphConfig
from linksyn.sampler.config import SamplerConfig
from linksyn.sink.config import SinkConfig
from linksyn.synth.config import SynthConfig
from linksyn.trainer.config import TrainerConfig
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class ConfigError(ValueError):
    """The configuration file or environment is invalid; the message names the field and the value."""


class LinksynConfig(BaseSettings):
    """Everything linksyn can be told."""

    model_config = SettingsConfigDict(env_prefix="LINKSYN_", env_nested_delimiter="__", extra="forbid")

    bus: BusConfig = BusConfig()
    """Which bus carries records, and how to reach Kafka."""
    runtime: RuntimeConfig = RuntimeConfig()
    """The consumer loop: batching, concurrency, retries, dead letters, shutdown."""
    server: ServerConfig = ServerConfig()
    """gRPC and metrics endpoints of a service process."""
    budget: BudgetConfig = BudgetConfig()
    """Prices per model, and the tokens or money a run (and each service) may spend."""
    extractor: ExtractorConfig = ExtractorConfig()
    """Knowledge-point extraction and annotation."""
    graph: GraphConfig = GraphConfig()
    """The knowledge-point graph and its snapshots."""
    sampler: SamplerConfig = SamplerConfig()
    """Value-function walks and targets."""
    synth: SynthConfig = SynthConfig()
    """Synthesis, refinement and filters."""
    sink: SinkConfig = SinkConfig()
    """Deduplication, decontamination, dataset shards and card."""
    trainer: TrainerConfig = TrainerConfig()
    """Continual pre-training and probes."""

    def section(self, service: str) -> BaseModel | None:
        """The section service `service` is built from (its own, e.g. `cfg.synth`; None for a service without one),
        with the one default that crosses sections applied, so that no service reads another's section: a sampler
        with neither a graph service to stream from (graph_target) nor a store of its own (snapshot_store) reads
        graph.snapshot_url, the store the graph service writes."""
        own = getattr(self, service, None) if service in type(self).model_fields else None
        if isinstance(own, SamplerConfig) and not own.graph_target and not own.snapshot_store:
            return own.model_copy(update={"snapshot_store": self.graph.snapshot_url})
        return own

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the YAML file, which arrives as init kwargs (see load_config).
        return env_settings, init_settings


def load_config(path: str | os.PathLike[str] | None = None) -> LinksynConfig:
    """Read the YAML file (or `$LINKSYN_CONFIG`, or nothing) and apply environment overrides."""
    path = path or os.environ.get("LINKSYN_CONFIG")
    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        loaded = read_yaml(p, "config file", ConfigError)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(p)!r} must hold a mapping at the top, got {type(loaded).__name__}")
        data = loaded or {}
    try:
        return LinksynConfig(**data)
    except ValidationError as e:
        where = f" in {str(path)!r}" if path else ""
        lines = [f"  {'.'.join(str(x) for x in err['loc'])}: {err['msg']}{_got(err)}" for err in e.errors()]
        raise ConfigError(redact_url_passwords(f"invalid configuration{where}:\n" + "\n".join(lines))) from None


SECRET_NAME_PARTS = frozenset({"password", "passwd", "token", "secret", "key", "credentials"})
"""A config key with one of these words (split at '_') may hold a secret: its value is never echoed in a config
error (`grpc_token`, `sasl_password`; not `max_tokens`)."""
MASK = "**********"


def _looks_secret(name: object) -> bool:
    return not SECRET_NAME_PARTS.isdisjoint(str(name).lower().replace("-", "_").split("_"))


def _got(err: Mapping[str, Any]) -> str:
    """What a config error says about the value: nothing for an unknown key (a misspelt secret's value must not be
    printed, and its name is enough), a mask where the key may hold a secret, the value otherwise."""
    if err.get("type") == "extra_forbidden":
        return " (value not shown)"
    return f" (got {_shown_input(err['loc'], err.get('input'))!r})"


def _shown_input(loc: tuple[object, ...], value: Any) -> Any:
    """The offending value of a validation error as the error message may show it: masked where it may be secret."""
    if any(_looks_secret(x) for x in loc):
        return MASK
    if isinstance(value, dict):
        return {k: MASK if _looks_secret(k) else _shown_input((), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown_input((), v) for v in value]
    return value


def config_to_yaml(cfg: LinksynConfig) -> str:
    """The effective configuration as YAML, secrets masked (secret fields, and passwords inside URLs)."""

    def mask(v: Any) -> Any:
        if isinstance(v, SecretStr):
            return MASK
        if isinstance(v, str):
            return redact_url_passwords(v)
        if isinstance(v, dict):
            return {k: mask(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mask(x) for x in v]
        return v

    return yaml.safe_dump(mask(cfg.model_dump(mode="python")), sort_keys=False)
