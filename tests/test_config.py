"""Configuration: defaults < YAML file < LINKSYN_* environment, nested merges, clear errors, masked secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from linksyn.cli import app
from linksyn.config import ConfigError, LinksynConfig, config_to_yaml, load_config
from typer.testing import CliRunner

YAML = """
bus:
  kafka:
    bootstrap: yaml-host:9092
    sasl_username: alice
    sasl_password: hunter2
  topics:
    partitions: 4
runtime:
  batch_size: 8
  workers: 2
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "linksyn.yaml"
    path.write_text(YAML)
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LINKSYN_"):
            monkeypatch.delenv(key)


def test_defaults_without_a_file():
    cfg = load_config(None)
    assert cfg == LinksynConfig()
    assert cfg.bus.kind == "memory" and cfg.bus.kafka.bootstrap == "localhost:9092"


def test_yaml_overrides_defaults_and_keeps_the_rest(config_file: Path):
    cfg = load_config(config_file)
    assert cfg.bus.kafka.bootstrap == "yaml-host:9092"
    assert cfg.bus.topics.partitions == 4
    assert cfg.runtime.batch_size == 8
    # Siblings not named in the file keep their defaults.
    assert cfg.bus.kafka.linger_ms == 5 and cfg.bus.topics.seeds == "linksyn.seeds"
    assert cfg.runtime.retry.max_attempts == 3


def test_env_beats_yaml_and_nested_overrides_merge(config_file: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LINKSYN_RUNTIME__BATCH_SIZE", "16")
    monkeypatch.setenv("LINKSYN_BUS__KAFKA__LINGER_MS", "50")
    monkeypatch.setenv("LINKSYN_BUS__KIND", "kafka")
    cfg = load_config(config_file)
    assert cfg.runtime.batch_size == 16  # env wins over the file
    assert cfg.runtime.workers == 2  # the file's sibling survives the env override
    assert cfg.bus.kafka.linger_ms == 50 and cfg.bus.kafka.bootstrap == "yaml-host:9092"
    assert cfg.bus.kind == "kafka"


def test_config_file_from_env_var(config_file: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LINKSYN_CONFIG", str(config_file))
    assert load_config().bus.kafka.bootstrap == "yaml-host:9092"


def test_unknown_key_error_names_the_key(tmp_path: Path):
    path = tmp_path / "typo.yaml"
    path.write_text("bus:\n  kafka:\n    bootstrapp: h:1\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert "bus.kafka.bootstrapp" in str(e.value) and str(path) in str(e.value)


def test_bad_value_error_names_field_and_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LINKSYN_RUNTIME__WORKERS", "0")
    with pytest.raises(ConfigError, match=r"runtime\.workers.*got '0'"):
        load_config()


def test_missing_and_non_mapping_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(path)


def test_config_to_yaml_masks_secrets_and_round_trips(config_file: Path):
    text = config_to_yaml(load_config(config_file))
    assert "hunter2" not in text
    data = yaml.safe_load(text)
    assert data["bus"]["kafka"]["sasl_password"] == "**********"
    assert data["bus"]["kafka"]["sasl_username"] == "alice"
    # Everything except the masked secret loads back to the same config.
    data["bus"]["kafka"]["sasl_password"] = "hunter2"
    assert LinksynConfig(**data) == load_config(config_file)


def test_cli_config_show_prints_effective_config_masked(config_file: Path):
    runner = CliRunner()
    result = runner.invoke(app, ["config", "show", "--config", str(config_file)], env={"LINKSYN_RUNTIME__BATCH_SIZE": "32"})
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    assert data["runtime"]["batch_size"] == 32 and data["bus"]["kafka"]["bootstrap"] == "yaml-host:9092"
    assert "hunter2" not in result.output and data["bus"]["kafka"]["sasl_password"] == "**********"


def test_cli_config_show_reports_invalid_config(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("runtime:\n  no_such_field: 1\n")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(path)])
    assert result.exit_code == 2
    assert "runtime.no_such_field" in result.output


def test_config_show_masks_passwords_inside_urls():
    cfg = LinksynConfig(
        graph={"snapshot_url": "s3://graph-writer:s3cr3t-pw@minio:9000/linksyn/graph"},
        synth={"model": "openai:https://bob:api-pass@llm.internal/v1#qwen"},
    )
    text = config_to_yaml(cfg)
    assert "s3cr3t-pw" not in text and "api-pass" not in text
    data = yaml.safe_load(text)
    assert data["graph"]["snapshot_url"] == "s3://graph-writer:**********@minio:9000/linksyn/graph"
    assert data["synth"]["model"] == "openai:https://bob:**********@llm.internal/v1#qwen"
    # URLs without credentials, and user names alone, are left as they are.
    plain = config_to_yaml(LinksynConfig(graph={"snapshot_url": "s3://bucket@host/x"}, synth={"model": "embedded"}))
    assert "s3://bucket@host/x" in plain


def test_per_stage_runtime_replaces_only_what_it_sets(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("runtime:\n  batch_size: 32\n  workers: 3\n  stages:\n    synth: {batch_size: 4}\n"
                    "    graph: {workers: 1, max_in_flight: 1024}\n")
    rt = load_config(path).runtime
    assert (rt.for_stage("synth").batch_size, rt.for_stage("synth").workers) == (4, 3)
    assert (rt.for_stage("graph").batch_size, rt.for_stage("graph").workers, rt.for_stage("graph").max_in_flight) \
        == (32, 1, 1024)
    assert rt.for_stage("sink") is rt and rt.batch_size == 32
    path.write_text("runtime:\n  stages:\n    synht: {batch_size: 4}\n")
    with pytest.raises(ConfigError, match="synht"):
        load_config(path)
    path.write_text("runtime:\n  stages:\n    synth: {batch_size: 0}\n")
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(path)
