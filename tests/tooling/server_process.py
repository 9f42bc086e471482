"""A local server run as a child process for tests (the llama.cpp OpenAI-compatible server, the embedding server):
its output in a temporary log, its tail in errors, stopped (terminate, then kill) on exit."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable, Self


class ServerProcess:
    """What LocalOpenAIServer and LocalEmbeddingServer share. Each defines `start()` (returning itself), which sets
    `_proc` and `_log`."""

    _proc: subprocess.Popen | None = None
    _log: Any = None  # the NamedTemporaryFile the child writes to
    start: Callable[[], Self]

    def _tail(self, chars: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
