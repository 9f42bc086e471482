"""Local networking facts the dev tooling needs (test brokers, local model servers, test services)."""

from __future__ import annotations

import socket


def free_loopback_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
