"""How a snapshot is laid out as bytes: one .npy blob per array plus a JSON manifest.

Shared by the snapshot store (files `<name>.npy` + `manifest.json`) and the gRPC Snapshot stream (the same blobs
in chunks, the manifest first), so both carry exactly the same bytes and the same checks.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any, Iterator, Mapping

import numpy as np
from linksyn.common.snapshots.graph import GraphSnapshot

MANIFEST = "manifest.json"
FORMAT = "linksyn-graph-snapshot/1"


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def from_npy_bytes(data: bytes | bytearray | memoryview, name: str = "?") -> np.ndarray:
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"array {name!r} is not a valid .npy blob ({len(data)} bytes): {e}") from e


def blobs(snap: GraphSnapshot) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
    """(name, .npy bytes, spec) per array, one at a time so a writer holds at most one extra copy.
    The spec (dtype, shape, bytes, sha256) goes into the manifest."""
    for name, a in snap.arrays().items():
        b = npy_bytes(a)
        spec = {"dtype": a.dtype.str, "shape": list(a.shape), "bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
        yield name, b, spec


def manifest(snap: GraphSnapshot, specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The manifest of a snapshot whose arrays have the given specs (from `blobs`)."""
    return {"format": FORMAT, **snap.header(), "arrays": {k: dict(v) for k, v in specs.items()}}


def encode(snap: GraphSnapshot) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(manifest, name -> .npy bytes) all in memory (small snapshots, tests)."""
    data, specs = {}, {}
    for name, b, spec in blobs(snap):
        data[name], specs[name] = b, spec
    return manifest(snap, specs), data


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    try:
        m = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: manifest is not valid JSON: {e}") from e
    if m.get("format") != FORMAT:
        raise ValueError(f"{where}: manifest format {m.get('format')!r}, expected {FORMAT!r}")
    return m


def decode(manifest: Mapping[str, Any], blobs: Mapping[str, bytes | bytearray], where: str, verify: bool = True) -> GraphSnapshot:
    """The snapshot from its manifest and .npy blobs; with `verify`, every blob's sha256 must match."""
    arrays: dict[str, np.ndarray] = {}
    for name, spec in manifest["arrays"].items():
        if name not in blobs:
            raise ValueError(f"{where}: array {name!r} listed in the manifest is missing")
        data = blobs[name]
        if verify:
            digest = hashlib.sha256(data).hexdigest()
            if digest != spec["sha256"]:
                raise ValueError(f"{where}: array {name!r} has sha256 {digest}, manifest says {spec['sha256']}")
        a = from_npy_bytes(data, name)
        if a.dtype.str != spec["dtype"] or list(a.shape) != list(spec["shape"]):
            raise ValueError(
                f"{where}: array {name!r} is {a.dtype.str}{list(a.shape)}, manifest says {spec['dtype']}{spec['shape']}"
            )
        arrays[name] = a
    return GraphSnapshot.from_parts(manifest, arrays)
