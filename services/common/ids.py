"""Deterministic record ids: the same content and lineage always give the same id, so replays can be dropped."""

from __future__ import annotations

import hashlib


def content_id(*parts: str | bytes | int) -> str:
    """sha256 over the parts (length-prefixed, so ("ab","c") != ("a","bc")), hex, first 32 characters."""
    h = hashlib.sha256()
    for p in parts:
        b = p if isinstance(p, bytes) else str(p).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:32]
