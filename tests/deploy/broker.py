"""A Kafka-protocol broker whose records survive a restart: Tansu with S3 storage, the S3 server being moto's S3
(tests/deploy/s3server.py, on loopback, in its own virtualenv .tools/s3). Kill the broker with -9 and start it again
on the same port: every record and committed offset is still there, read back from the S3 server.

Why not s3rver (npm), which keeps objects in files: Tansu updates its metadata objects by compare-and-set (PUT with
If-Match / If-None-Match), and s3rver ignores those headers on PUT. In the deployment test this lost idempotent
producers' sequence numbers (the sampler's producer got OutOfOrderSequenceNumber, then UnknownProducerId, and stopped
storing paths). The S3 server has to stay up while the broker restarts; its objects live in its memory.

Used by the deployment test (tests/deploy) and `scripts/local-chart.sh`. Both processes run in their own session
(so a `local-chart.sh up` can return while they run); `stop()` ends the ones this object (or a saved state) started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from tests.tooling.ports import free_loopback_port
from tests.tooling.tansu import answers_kafka, port_open, resolve_tansu_binary

ROOT = Path(__file__).resolve().parents[2]
S3_PYTHON = ROOT / ".tools" / "s3" / "bin" / "python"
S3_SERVER = Path(__file__).with_name("s3server.py")
BUCKET = "linksyn"


class BrokerError(RuntimeError):
    """The S3 server or Tansu is missing or did not come up."""


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_process(pid: int, grace_s: float = 5) -> None:
    """SIGTERM to the process group that `pid` leads (started with start_new_session=True), SIGKILL after
    `grace_s`. Never raises."""
    if not _alive(pid):
        _reap(pid)
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + grace_s
    while _alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _reap(pid)


@dataclass
class DurableBroker:
    """The S3 server on 127.0.0.1:`s3_port`, Tansu on 127.0.0.1:`port` storing into it; logs in `root`."""

    root: Path
    port: int = 0
    s3_port: int = 0
    tansu_pid: int | None = None
    s3_pid: int | None = None
    starts: int = 0
    log_paths: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.port = self.port or free_loopback_port()
        self.s3_port = self.s3_port or free_loopback_port()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def state(self) -> dict:
        d = asdict(self)
        d["root"] = str(self.root)
        return d

    # ---- the S3 server -----------------------------------------------------------------------------------------

    def start_s3(self, timeout_s: float = 60) -> None:
        if not S3_PYTHON.exists():
            raise BrokerError(f"the S3 server's virtualenv {S3_PYTHON.parent.parent} is missing: "
                              "run `bash scripts/install_podman.sh`")
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "s3.log"
        self.log_paths["s3"] = str(log)
        with open(log, "ab") as out:
            proc = subprocess.Popen([str(S3_PYTHON), str(S3_SERVER), str(self.s3_port), BUCKET],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.s3_pid = proc.pid
        deadline = time.monotonic() + timeout_s
        while f"serving bucket {BUCKET}" not in self._tail("s3"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BrokerError(f"the S3 server did not start on 127.0.0.1:{self.s3_port}:\n{self._tail('s3')}")
            time.sleep(0.1)

    # ---- Tansu -------------------------------------------------------------------------------------------------

    def start_broker(self, timeout_s: float = 60) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "AWS_ENDPOINT": f"http://127.0.0.1:{self.s3_port}",
            "AWS_ACCESS_KEY_ID": "linksyn-test",
            "AWS_SECRET_ACCESS_KEY": "linksyn-test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
        log = self.root / "tansu.log"
        self.log_paths["tansu"] = str(log)
        with open(log, "ab") as out:
            out.write(f"\n==== start {self.starts + 1} ====\n".encode())
            out.flush()
            proc = subprocess.Popen(
                [resolve_tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", f"s3://{BUCKET}/"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.tansu_pid = proc.pid
        self.starts += 1
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise BrokerError(f"Tansu exited with {proc.returncode} while starting:\n{self._tail('tansu')}")
            if port_open(self.port) and answers_kafka(self.bootstrap):
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"Tansu did not answer on {self.bootstrap} within {timeout_s:g} s:\n"
                                  f"{self._tail('tansu')}")
            time.sleep(0.2)

    def start(self) -> "DurableBroker":
        try:
            self.start_s3()
            self.start_broker()
        except BaseException:
            self.stop()
            raise
        return self

    def kill9_broker(self) -> None:
        """SIGKILL the broker: nothing it held in memory survives; what it had written to the S3 server does."""
        assert self.tansu_pid is not None
        os.kill(self.tansu_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(self.tansu_pid) and time.monotonic() < deadline:
            _reap(self.tansu_pid)
            time.sleep(0.05)
        _reap(self.tansu_pid)
        self.tansu_pid = None

    def restart_broker(self) -> None:
        """A new broker process on the same port and storage."""
        self.start_broker()

    def stop(self) -> None:
        """Stop Tansu, then the S3 server (those this object started, by pid). Never raises."""
        for attr in ("tansu_pid", "s3_pid"):
            pid = getattr(self, attr)
            if pid:
                stop_process(pid)
            setattr(self, attr, None)

    def _tail(self, which: str, n: int = 3000) -> str:
        p = self.log_paths.get(which)
        return Path(p).read_bytes()[-n:].decode("utf-8", "replace") if p and Path(p).exists() else "(no log)"

    def __enter__(self) -> "DurableBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
