"""Secrets against the inputs of issue 21: a YAML syntax error on a secret's line, a password inside an `openai:`
spec, one API key for every model of a service, a key over plaintext HTTP. None may reach an error, a log line or
report.json; each key goes only to the endpoint it belongs to."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterator

import pytest
from linksyn.cli import app
from linksyn.common.llm import load_llm
from linksyn.common.llm.base import ChatRequest, SamplingParams
from linksyn.common.llm.config import LLMConfig
from linksyn.common.llm.spec import ModelSpecError
from typer.testing import CliRunner

from tests.common.llm.test_openai import ScriptedServer

PASSWORD = "pw-9c1f7e2b44"
TOKEN = "tok-e8d2b1a07f"
KEY_A = "sk-endpoint-a-5d0e"
KEY_B = "sk-endpoint-b-77c1"


@pytest.fixture
def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LINKSYN_") and k != "OPENAI_API_KEY"}


def test_a_yaml_syntax_error_names_the_line_not_its_secret(tmp_path: Path, clean_env: dict[str, str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f'server:\n  grpc_port: 50051\n  grpc_token: "{TOKEN}\n  host: 0.0.0.0\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(cfg)], env=clean_env)
    assert result.exit_code != 0
    assert TOKEN not in result.output
    assert "not valid YAML at line" in result.output


def test_a_password_in_a_model_spec_never_reaches_the_log_or_the_report(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f'extractor:\n  model: "openai:http://alice:{PASSWORD}@127.0.0.1:9/v1"\n', encoding="utf-8")
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"question": "What is 2 + 2?", "answer": "4"}) + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--seeds", str(seeds), "--out", str(out), "--config", str(cfg),
                                      "--stages", "extractor"], env=clean_env)
    report = (out / "report.json").read_text()
    assert "alice:**********@" in report  # the failure is reported, the user kept for debugging
    assert PASSWORD not in report
    assert PASSWORD not in result.output


def test_a_password_in_an_invalid_config_value_is_masked(tmp_path: Path, clean_env: dict[str, str]) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f'trainer:\n  launcher: "https://bob:{PASSWORD}@k8s.example/api"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(cfg)], env=clean_env)
    assert result.exit_code != 0 and "trainer.launcher" in result.output
    assert PASSWORD not in result.output


def test_log_lines_and_tracebacks_are_masked_by_the_cli_filter(caplog: pytest.LogCaptureFixture) -> None:
    from linksyn.common.config import URLPasswordFilter

    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "cannot reach %s", (f"s3://u:{PASSWORD}@b/k",), None)
    try:
        raise ValueError(f"openai:https://u:{PASSWORD}@h/v1#m")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    URLPasswordFilter().filter(record)
    assert PASSWORD not in record.getMessage() and PASSWORD not in (record.exc_text or "")
    # A password with an unencoded '@' is masked up to the host.
    from linksyn.common.config import redact_url_passwords

    assert redact_url_passwords("http://u:p@ss@host/v1") == "http://u:**********@host/v1"


@pytest.fixture
def two_servers() -> Iterator[tuple[ScriptedServer, ScriptedServer]]:
    a, b = ScriptedServer(), ScriptedServer()
    yield a, b
    a.close()
    b.close()


def _ask(llm: object) -> None:
    out = llm.generate([ChatRequest(messages=({"role": "user", "content": "ok:1"},),  # type: ignore[attr-defined]
                                    params=SamplingParams(max_tokens=4))])
    assert out[0].ok, out[0].error


def test_each_endpoint_gets_its_own_key_and_no_other(two_servers, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two_servers
    monkeypatch.setenv("OPENAI_API_KEY", KEY_A)
    monkeypatch.setenv("REFINER_KEY", KEY_B)
    main, second = f"openai:{a.url}#gen", f"openai:{b.url}#ref"
    cfg = LLMConfig()
    generator = load_llm(main, cfg)
    refiner = load_llm(second, cfg, main_model=main)  # another endpoint: api_key_env's key is not its key
    same_server = load_llm(f"openai:{a.url}#other", cfg, main_model=main)
    listed = load_llm(second, LLMConfig(api_keys={b.url: "REFINER_KEY"}), main_model=main)
    try:
        for llm in (generator, refiner, same_server, listed):
            _ask(llm)
    finally:
        for llm in (generator, refiner, same_server, listed):
            llm.close()
    assert a.auth_headers == [f"Bearer {KEY_A}", f"Bearer {KEY_A}"]
    assert b.auth_headers == [None, f"Bearer {KEY_B}"]


def test_the_synth_sends_the_key_only_to_its_generator(two_servers, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    from linksyn.common.bus import InMemoryBus
    from linksyn.config import LinksynConfig
    from linksyn.registry import build_service

    a, b = two_servers
    monkeypatch.setenv("OPENAI_API_KEY", KEY_A)
    cfg = LinksynConfig.model_validate({"synth": {"model": f"openai:{a.url}#gen", "refiner_model": f"openai:{b.url}#ref"}})
    parts = build_service("synth", cfg, InMemoryBus())
    try:
        synth = parts.stage.synthesizer
        _ask(synth.generator)
        _ask(synth.refiner)
    finally:
        parts.close()
    assert a.auth_headers == [f"Bearer {KEY_A}"] and b.auth_headers == [None]


@pytest.mark.parametrize("url, refused", [
    ("http://10.1.2.3:8000/v1", True),
    ("http://linksyn-vllm:8000/v1", True),
    ("https://api.example.com/v1", False),
    ("http://127.0.0.1:8000/v1", False),
    ("http://localhost:8000/v1", False),
])
def test_a_key_never_goes_over_plaintext_http_to_another_host(url: str, refused: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY_A)
    if refused:
        with pytest.raises(ModelSpecError, match="clear text") as e:
            load_llm(f"openai:{url}#m")
        assert KEY_A not in str(e.value)
        load_llm(f"openai:{url}#m", allow_plaintext_api_key=True).close()  # explicitly allowed
    else:
        load_llm(f"openai:{url}#m").close()
    monkeypatch.delenv("OPENAI_API_KEY")
    load_llm(f"openai:{url}#m").close()  # no key: nothing to protect


def test_each_base_url_of_a_spec_gets_its_own_key(two_servers, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two_servers
    monkeypatch.setenv("OPENAI_API_KEY", KEY_A)
    monkeypatch.setenv("SECOND_KEY", KEY_B)
    main = f"openai:{a.url},{b.url}#gen"
    generator = load_llm(main, LLMConfig(api_keys={b.url: "SECOND_KEY"}))
    refiner = load_llm(f"openai:{b.url}#ref", LLMConfig(), main_model=main)  # one of the main model's URLs
    try:
        requests = [ChatRequest(messages=({"role": "user", "content": "ok:1"},), params=SamplingParams(max_tokens=4))
                    for _ in range(8)]
        assert all(c.ok for c in generator.generate(requests))  # eight at once: both endpoints take some
        _ask(refiner)
    finally:
        generator.close()
        refiner.close()
    assert a.auth_headers and set(a.auth_headers) == {f"Bearer {KEY_A}"}
    assert len(b.auth_headers) >= 2 and set(b.auth_headers[:-1]) == {f"Bearer {KEY_B}"}
    assert b.auth_headers[-1] == f"Bearer {KEY_A}"  # the refiner shares a base URL with the main model


def test_a_plaintext_url_among_several_is_refused_when_it_would_get_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY_A)
    with pytest.raises(ModelSpecError, match="clear text") as e:
        load_llm("openai:http://127.0.0.1:9/v1,http://10.1.2.3:8000/v1#m")
    assert "10.1.2.3" in str(e.value) and KEY_A not in str(e.value)
