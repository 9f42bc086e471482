"""The node's loopback inside the played pods: what a Kubernetes node gives a pod through its network (Service IPs,
kube-proxy), here for `podman kube play`, so that a pod reaches 127.0.0.1:PORT of the machine (the broker, another
service's gRPC port) from its own network namespace, and no packet goes anywhere but loopback.

Why: podman 4.3 publishes every containerPort of a played pod on the host, which it can only do for pods in their
own network namespace (slirp4netns; `--network host` is refused with "PortMappings can only be used with Bridge or
slirp4netns networking"). Inbound, podman's rootlessport carries host 127.0.0.1:PORT to the pod's 127.0.0.1:PORT.
Outbound, this process opens a listening socket on 127.0.0.1:PORT *inside* each pod's network namespace (setns(2)
while the socket is made) and joins every connection it accepts to a new connection to the machine's
127.0.0.1:PORT. Kafka clients connect to the address the broker advertises (127.0.0.1:PORT), so a gateway address
would not do.

Run as root: `python -m tests.deploy.netproxy STATE_DIR`. It reads STATE_DIR/netproxy-want.json, {netns path: [ports]},
every 0.2 s, and writes STATE_DIR/netproxy-have.json, the namespaces it listens in; it forgets a namespace that is gone.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import socket
import sys
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listen_in(netns: str, port: int, host_ns: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:`port` in the network namespace at `netns`."""
    fd = os.open(netns, os.O_RDONLY)
    try:
        _setns(fd)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(128)
            s.setblocking(False)
            return s
        finally:
            _setns(host_ns)
    finally:
        os.close(fd)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


def _handler(port: int):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)  # the machine's loopback
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    return handle


async def run(state_dir: Path) -> None:
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    want_file, have_file = state_dir / "netproxy-want.json", state_dir / "netproxy-have.json"
    servers: dict[str, list[asyncio.base_events.Server]] = {}
    errors: dict[str, str] = {}
    last = None
    while True:
        try:
            want = json.loads(want_file.read_text()) if want_file.exists() else {}
        except (OSError, ValueError):
            want = {}
        for ns in list(servers):
            if ns not in want or not os.path.exists(ns):
                for srv in servers.pop(ns):
                    srv.close()
        for ns, ports in want.items():
            if ns in servers or not os.path.exists(ns):
                continue
            made = []
            try:
                for port in ports:
                    sock = listen_in(ns, int(port), host_ns)
                    made.append(await asyncio.start_server(_handler(int(port)), sock=sock))
                servers[ns] = made
                errors.pop(ns, None)
            except OSError as e:
                for srv in made:
                    srv.close()
                errors[ns] = f"{type(e).__name__}: {e}"
        have = {"attached": sorted(servers), "errors": errors}
        if have != last:
            tmp = have_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(have))
            tmp.replace(have_file)
            last = have
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.deploy.netproxy STATE_DIR")
    asyncio.run(run(Path(sys.argv[1])))
