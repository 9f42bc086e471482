"""Model spec strings: parsing and locating models on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from linksyn.common.llm.spec import (
    EMBEDDED_GGUF,
    ModelSpec,
    ModelSpecError,
    embedded_gguf_path,
    parse_spec,
    resolve_gguf_path,
    resolve_hf_source,
)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("embedded", ModelSpec("embedded", "embedded", raw="embedded")),
        ("hf:embedded", ModelSpec("hf", "embedded", raw="hf:embedded")),
        ("hf:/models/qwen", ModelSpec("hf", "/models/qwen", raw="hf:/models/qwen")),
        ("hf:Org/Name", ModelSpec("hf", "Org/Name", raw="hf:Org/Name")),
        ("vllm:Qwen/Qwen2.5-7B-Instruct", ModelSpec("vllm", "Qwen/Qwen2.5-7B-Instruct", raw="vllm:Qwen/Qwen2.5-7B-Instruct")),
        ("llamacpp:/m/x.gguf", ModelSpec("llamacpp", "/m/x.gguf", raw="llamacpp:/m/x.gguf")),
        (
            "openai:http://127.0.0.1:8000/v1#smollm2",
            ModelSpec("openai", "http://127.0.0.1:8000/v1", "smollm2", raw="openai:http://127.0.0.1:8000/v1#smollm2",
                      urls=("http://127.0.0.1:8000/v1",)),
        ),
        (
            "openai:http://a:8000/v1/, http://b:8000/v1#smollm2",  # several endpoints serving one model
            ModelSpec("openai", "http://a:8000/v1", "smollm2", raw="openai:http://a:8000/v1/, http://b:8000/v1#smollm2",
                      urls=("http://a:8000/v1", "http://b:8000/v1")),
        ),
        (
            "openai:https://api.example.com/v1/#org/model#v2",  # the model is after the last '#'
            ModelSpec("openai", "https://api.example.com/v1/#org/model", "v2", raw="openai:https://api.example.com/v1/#org/model#v2",
                      urls=("https://api.example.com/v1/#org/model",)),
        ),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gpt4", "unknown model spec 'gpt4'"),
        ("tgi:foo", "unknown model spec 'tgi:foo'"),
        ("hf:", "names no model"),
        ("openai:http://x/v1", "openai:BASE_URL#MODEL"),
        ("openai:http://x/v1#", "openai:BASE_URL#MODEL"),
        ("openai:ftp://x#m", "must start with http"),
        ("openai:http://x/v1,ftp://y#m", "base URL 'ftp://y' must start with http"),
        ("openai:http://x/v1,http://x/v1/#m", "lists a base URL twice"),
    ],
)
def test_parse_spec_errors_name_the_spec(spec, message):
    with pytest.raises(ModelSpecError, match=message.replace("(", r"\(")):
        parse_spec(spec)


def test_embedded_gguf_is_found_in_the_installed_package():
    path = embedded_gguf_path()
    assert path.name == EMBEDDED_GGUF and path.stat().st_size > 50_000_000
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"


def test_resolve_hf_source(tmp_path: Path):
    src = resolve_hf_source("embedded", "hf:embedded")
    assert src.gguf_file == EMBEDDED_GGUF and src.local
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_hf_source(str(gguf), "s").path == str(tmp_path)
    assert resolve_hf_source(str(tmp_path), "s").gguf_file is None
    hub = resolve_hf_source("Org/Name", "hf:Org/Name")
    assert hub.path == "Org/Name" and not hub.local
    with pytest.raises(ModelSpecError, match=r"hf:/nope.*does not exist"):
        resolve_hf_source("/nope/x.gguf", "hf:/nope/x.gguf")
    with pytest.raises(ModelSpecError, match=r"not a directory, a .gguf file, or a hub id"):
        resolve_hf_source("/nope/dir", "hf:/nope/dir")


def test_resolve_gguf_path(tmp_path: Path):
    assert resolve_gguf_path("embedded", "llamacpp:embedded") == embedded_gguf_path()
    with pytest.raises(ModelSpecError, match=r"llamacpp:/nope.gguf.*not an existing .gguf"):
        resolve_gguf_path("/nope.gguf", "llamacpp:/nope.gguf")
