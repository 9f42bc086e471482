"""Text embedders behind one interface: the local sentence-transformers model, or any OpenAI-compatible
`/v1/embeddings` endpoint (vLLM serving bge-m3, text-embeddings-inference, OpenAI's API...).

An embedder spec is written like an LLM model spec:
- `minilm`: the packaged all-MiniLM-L6-v2 (sentence-transformers, in-process, English only); the extractor owns
  it (`linksyn.extractor.embedding.shared_embedder`) and passes it in as `local`;
- `openai:BASE_URL#MODEL`: POST BASE_URL/embeddings {"model": MODEL, "input": [...]} (OpenAI's wire format).

Every embedder returns unit-norm float32 rows and says which languages it was trained on (`languages`): the KP
merger never asks it about text in another language.

`OpenAIEmbedder` sends inputs in batches of `batch_size`, retries transient failures (429, 5xx, timeouts,
connection errors) with the backoff of `LLMConfig.retry`, stops reading a reply past `max_reply_bytes`, and sends
the key of the environment variable `api_key_env` only in the Authorization header. A reply that is not one vector
per input of one dimension is an error that says what came back: llama-cpp-python's server, for instance, returns
one vector per token (a list of lists) for a model without a pooling layer, such as the packaged SmolLM2 GGUF.
"""

from __future__ import annotations

import json
import os
import time
from typing import Protocol, Sequence, runtime_checkable

import httpx
import numpy as np
from linksyn.common.llm.config import LLMConfig
from linksyn.common.llm.spec import ModelSpecError, parse_spec
from linksyn.common.retry import backoff_delay

LOCAL_EMBEDDER = "minilm"
"""The spec of the packaged local model (all-MiniLM-L6-v2)."""


class EmbeddingError(RuntimeError):
    """An embedding request failed after its retries, or its reply was not one vector per input."""


@runtime_checkable
class TextEmbedder(Protocol):
    """texts -> (n, dim) unit-norm float32 rows, one per text, in order."""

    name: str
    """What the rows come from (for logs and reports)."""
    languages: frozenset[str]
    """Languages ('en', 'zh', ...) the model was trained on."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def check_embedder_spec(spec: str) -> str:
    """`spec` if it is 'minilm' or an 'openai:URL#MODEL' spec; ModelSpecError naming it otherwise."""
    if spec.strip() == LOCAL_EMBEDDER:
        return spec.strip()
    if not spec.strip().startswith("openai:"):
        raise ModelSpecError(f"unknown embedder spec {spec!r}: expected {LOCAL_EMBEDDER!r} or 'openai:BASE_URL#MODEL' "
                             "(an OpenAI-compatible /v1/embeddings endpoint, e.g. 'openai:http://vllm:8000/v1#BAAI/bge-m3')")
    parse_spec(spec)  # the URL#MODEL checks of LLM specs
    return spec.strip()


def load_embedder(spec: str, languages: Sequence[str], config: LLMConfig | None = None,
                  local: TextEmbedder | None = None) -> TextEmbedder:
    """The embedder a spec names, declared to cover `languages`. `local` is the in-process model behind 'minilm'."""
    check_embedder_spec(spec)
    if spec.strip() == LOCAL_EMBEDDER:
        if local is None:
            raise ModelSpecError(f"embedder spec {spec!r} needs the local model, which was not loaded")
        return local
    ms = parse_spec(spec)
    return OpenAIEmbedder(ms.target, ms.model, languages, config)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class OpenAIEmbedder:
    """Client of an OpenAI-compatible embeddings endpoint (see the module doc). Thread-safe (one httpx.Client)."""

    def __init__(self, base_url: str, model: str, languages: Sequence[str], config: LLMConfig | None = None,
                 batch_size: int = 64) -> None:
        self.config = config or LLMConfig()
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}"
        self.languages = frozenset(languages)
        self.batch_size = batch_size
        key = os.environ.get(self.config.api_key_env) or None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.config.request_timeout_s, connect=self.config.connect_timeout_s),
        )
        self.dim: int | None = None
        self.requests = 0

    def close(self) -> None:
        self._client.close()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        parts = [self._batch(list(texts[i : i + self.batch_size])) for i in range(0, len(texts), self.batch_size)]
        return unit_rows(np.concatenate(parts))

    def _batch(self, texts: list[str]) -> np.ndarray:
        retry = self.config.retry
        last = ""
        for attempt in range(1, retry.max_attempts + 1):
            try:
                body = self._post(texts)
            except _Transient as e:
                last = str(e)
                if attempt < retry.max_attempts:
                    time.sleep(backoff_delay(attempt, retry, jitter=True))
                continue
            return self._vectors(body, len(texts))
        raise EmbeddingError(f"{self.name} at {self.base_url}: {retry.max_attempts} attempts failed, last: {last}")

    def _post(self, texts: list[str]) -> bytes:
        url = f"{self.base_url}/embeddings"
        self.requests += 1
        try:
            with self._client.stream("POST", url, json={"model": self.model, "input": texts}) as r:
                body = b""
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > self.config.max_reply_bytes:
                        raise EmbeddingError(f"{self.name}: reply of more than {len(body)} bytes exceeds "
                                             f"llm.max_reply_bytes={self.config.max_reply_bytes}")
                status = r.status_code
        except (httpx.TimeoutException, httpx.TransportError) as e:
            raise _Transient(f"{type(e).__name__}: {e}") from e
        if status in (408, 409, 425, 429) or status >= 500:
            raise _Transient(f"HTTP {status}: {body[:300]!r}")
        if status != 200:
            raise EmbeddingError(f"{self.name} at {url}: HTTP {status}: {body[:300].decode(errors='replace')}")
        return body

    def _vectors(self, body: bytes, n: int) -> np.ndarray:
        try:
            data = json.loads(body)["data"]
            rows = sorted(data, key=lambda d: d.get("index", 0))
            vecs = [r["embedding"] for r in rows]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise EmbeddingError(f"{self.name}: reply is not an embeddings list ({e!r}): {body[:200]!r}") from e
        if len(vecs) != n:
            raise EmbeddingError(f"{self.name}: {len(vecs)} embeddings for {n} inputs")
        if vecs and isinstance(vecs[0], list) and vecs[0] and isinstance(vecs[0][0], list):
            raise EmbeddingError(
                f"{self.name}: the server returned one vector per token ({len(vecs[0])} vectors of dimension "
                f"{len(vecs[0][0])} for input 0), not one per input: the model has no pooling layer (a causal LM "
                "served by llama-cpp-python's server does this); serve a sentence-embedding model (bge-m3, e5...)")
        arr = np.asarray(vecs, dtype=np.float32)
        if arr.ndim != 2:
            raise EmbeddingError(f"{self.name}: embeddings of different dimensions in one reply")
        if self.dim is not None and arr.shape[1] != self.dim:
            raise EmbeddingError(f"{self.name}: dimension {arr.shape[1]}, earlier replies had {self.dim}")
        self.dim = arr.shape[1]
        return arr


class _Transient(Exception):
    """A failure worth another attempt."""
