"""A real OpenAI-compatible server on loopback serving a GGUF (the packaged SmolLM2 by default).

It is llama-cpp-python's server (`python -m llama_cpp.server`) in a child process, for tests, benches and local
runs of the `openai` backend without a GPU:

    with LocalOpenAIServer() as server:
        llm = load_llm(server.spec)          # 'openai:http://127.0.0.1:PORT/v1#smollm2'
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from linksyn.common.llm.spec import embedded_gguf_path

from tests.tooling.ports import free_loopback_port
from tests.tooling.server_process import ServerProcess

INSTALL_HINT = "the local OpenAI-compatible server needs llama-cpp-python: pip install 'llama-cpp-python[server]'"


def server_available() -> bool:
    """Whether llama-cpp-python's server can be started here (for skipping tests cleanly)."""
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette"))


class LocalOpenAIServer(ServerProcess):
    """Starts the server on a free loopback port, waits until /v1/models answers, stops it on exit."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        model_name: str = "smollm2",
        n_ctx: int = 2048,
        threads: int | None = None,
        start_timeout_s: float = 180.0,
        host: str = "127.0.0.1",
        embedding: bool = False,
    ) -> None:
        """`embedding`: also serve /v1/embeddings (llama-cpp-python's --embedding; on a model without a pooling
        layer, as the packaged SmolLM2, it returns one vector per token)."""
        self.model_path = Path(model_path) if model_path else embedded_gguf_path()
        self.model_name = model_name
        self.n_ctx = n_ctx
        self.threads = threads
        self.start_timeout_s = start_timeout_s
        self.host = host
        self.embedding = embedding
        self.port = 0
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def spec(self) -> str:
        """Model spec for load_llm."""
        return f"openai:{self.base_url}#{self.model_name}"

    def start(self) -> "LocalOpenAIServer":
        if not server_available():
            raise ImportError(INSTALL_HINT)
        self.port = free_loopback_port(self.host)
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.model_name,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
        ]
        if self.threads:
            cmd += ["--n_threads", str(self.threads)]
        if self.embedding:
            cmd += ["--embedding", "true"]
        # The server's chatter goes to a temp file, shown if it fails to start.
        self._log = tempfile.NamedTemporaryFile(prefix="linksyn-llama-server-", suffix=".log", delete=False)
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self._proc.returncode}: {self._tail()}")
            try:
                r = httpx.get(f"{self.base_url}/models", timeout=2.0)
                if r.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer on {self.base_url} within {self.start_timeout_s:g}s: {self._tail()}")
