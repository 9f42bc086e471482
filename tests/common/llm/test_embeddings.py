"""Embedding backends: the OpenAI-compatible /v1/embeddings client against a real server on loopback (MiniLM behind
the OpenAI wire format), the client alone against scripted transports (a unit test of the class), spec checks, and
what llama-cpp-python's server really returns for the packaged SmolLM2."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from linksyn.common.llm.config import LLMConfig
from linksyn.common.llm.embeddings import (
    EmbeddingError,
    OpenAIEmbedder,
    TextEmbedder,
    check_embedder_spec,
    load_embedder,
)
from linksyn.common.llm.spec import ModelSpecError


def test_embedder_specs():
    assert check_embedder_spec("minilm") == "minilm"
    assert check_embedder_spec("openai:http://127.0.0.1:8000/v1#BAAI/bge-m3").endswith("bge-m3")
    for bad in ("bge-m3", "hf:foo", "openai:http://x/v1", "openai:ftp://x/v1#m"):
        with pytest.raises(ModelSpecError):
            check_embedder_spec(bad)
    with pytest.raises(ModelSpecError, match="needs the local model"):
        load_embedder("minilm", ["en"])


@pytest.fixture(scope="module")
def embedder():
    from linksyn.extractor.embedding import shared_embedder

    return shared_embedder()


@pytest.fixture(scope="module")
def embedding_server():
    from tests.tooling.embedding_server import LocalEmbeddingServer

    with LocalEmbeddingServer(fail_first=1) as server:
        yield server


def test_openai_embeddings_against_a_real_server(embedding_server, embedder):
    client = load_embedder(embedding_server.spec, ["en"], LLMConfig(retry={"max_attempts": 3, "backoff_initial_s": 0.05}))
    assert isinstance(client, TextEmbedder) and client.languages == frozenset({"en"})
    texts = [f"text number {i}" for i in range(70)] + ["pythagorean theorem", "pythagoras theorem"]
    vecs = client.encode(texts)  # the first request gets a 503 and is retried; 72 inputs go in two batches of 64
    assert vecs.shape == (72, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vecs, embedder.encode(texts), atol=1e-4)  # the same model as in-process
    assert float(vecs[-1] @ vecs[-2]) > 0.92
    assert client.requests == 3
    assert client.encode([]).shape[0] == 0


def test_kp_merging_through_the_endpoint(embedding_server):
    from linksyn.extractor.config import ExtractorConfig, KPEmbedderConfig
    from linksyn.extractor.extractor import merge_spaces
    from linksyn.extractor.kp_canon import KPCanon

    cfg = ExtractorConfig(kp_embedders=[KPEmbedderConfig(model=embedding_server.spec, languages=["en"])])
    canon = KPCanon(merge_spaces(cfg, local=None))
    out = canon.canonicalise([["Pythagorean theorem"], ["Pythagoras theorem", "光合作用"]])
    assert out == [["pythagorean theorem"], ["pythagorean theorem", "光合作用"]]
    assert canon.merged_by_script == {"en": 1}


def _client(handler, **config) -> OpenAIEmbedder:
    client = OpenAIEmbedder("http://embed.test/v1", "m", ["en", "zh"], LLMConfig(**config), batch_size=2)
    client._client = httpx.Client(transport=httpx.MockTransport(handler))
    return client


def test_client_unit_batches_order_and_auth(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sekret")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = __import__("json").loads(request.content)
        seen.append(body["input"])
        # Out of order on purpose: the client sorts by index.
        data = [{"index": i, "embedding": [float(len(t)), 1.0]} for i, t in enumerate(body["input"])][::-1]
        return httpx.Response(200, json={"data": data})

    client = _client(handler)
    vecs = client.encode(["a", "bbb", "cc"])
    assert seen == [["a", "bbb"], ["cc"]]
    assert np.allclose(vecs[:, 0] / vecs[:, 1], [1, 3, 2])


def test_client_unit_errors_say_what_came_back():
    def per_token(request):
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [[0.1, 0.2], [0.3, 0.4]]}]})

    with pytest.raises(EmbeddingError, match="one vector per token"):
        _client(per_token).encode(["x"])

    def short(request):
        return httpx.Response(200, json={"data": []})

    with pytest.raises(EmbeddingError, match="0 embeddings for 1 inputs"):
        _client(short).encode(["x"])

    calls = []

    def down(request):
        calls.append(1)
        return httpx.Response(503, text="busy")

    with pytest.raises(EmbeddingError, match="3 attempts failed, last: HTTP 503"):
        _client(down, retry={"max_attempts": 3, "backoff_initial_s": 0.0}).encode(["x"])
    assert len(calls) == 3

    def bad_request(request):
        return httpx.Response(400, text="model not found")

    with pytest.raises(EmbeddingError, match="HTTP 400: model not found"):
        _client(bad_request).encode(["x"])


@pytest.mark.slow
def test_llama_cpp_server_returns_token_vectors_for_smollm2():
    """Checked, not assumed: llama-cpp-python's server serves /v1/embeddings from the packaged SmolLM2 GGUF only as
    one vector per token (no pooling layer; the server has no pooling option), which the client refuses clearly."""
    from tests.tooling.llm_server import LocalOpenAIServer, server_available

    if not server_available():
        pytest.skip("llama-cpp-python's server is not installed")
    with LocalOpenAIServer(embedding=True, n_ctx=512) as server:
        client = load_embedder(server.spec, ["en"])
        with pytest.raises(EmbeddingError, match="one vector per token"):
            client.encode(["pythagorean theorem"])
