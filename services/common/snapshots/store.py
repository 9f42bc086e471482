"""Versioned, immutable graph snapshots in a local directory or at any fsspec URL (s3://, gs://, memory://...).

Layout under the root:
    v00000007/manifest.json     version, offsets, disciplines, meta, and each array's dtype/shape/bytes/sha256
    v00000007/<array>.npy       one .npy file per array (StringTables as <field>.blob.npy / <field>.offsets.npy)
    LATEST                      the newest complete version number (a hint; the listing is the truth)

Atomicity: on a local filesystem a version is written into `v{version:08d}.tmp/`, fsynced and renamed into place,
then LATEST is replaced atomically. On object stores, where a rename is a copy, the arrays are written in place and
the manifest last: a version directory without a manifest is incomplete and ignored (and swept later).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import fsspec
from fsspec.implementations.local import LocalFileSystem
from linksyn.common.snapshots import wire
from linksyn.common.snapshots.graph import GraphSnapshot

_VERSION_DIR = re.compile(r"^v(\d{8})$")
_TMP_DIR = re.compile(r"^v(\d{8})\.tmp$")
LATEST = "LATEST"


class SnapshotStore:
    """Writes, lists and loads snapshots under one URL. One writer at a time (the graph service)."""

    def __init__(self, url: str | os.PathLike[str], keep: int = 3) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1 (the latest snapshot is never deleted), got {keep}")
        self.url = str(url)
        self.keep = keep
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.root = self.root.rstrip("/") or "/"
        self._local = isinstance(self.fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"SnapshotStore({self.url!r}, keep={self.keep})"

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    @staticmethod
    def dirname(version: int) -> str:
        return f"v{version:08d}"

    # ---- writing -----------------------------------------------------------------------------------------------

    def write(self, snap: GraphSnapshot) -> dict[str, Any]:
        """Write `snap` as a new version (which must not exist yet); returns its manifest. Then applies retention."""
        if snap.version < 1:
            raise ValueError(f"snapshot versions start at 1, got {snap.version}")
        final = self._path(self.dirname(snap.version))
        self.fs.makedirs(self.root, exist_ok=True)
        if self.fs.exists(self._path(self.dirname(snap.version), wire.MANIFEST)):
            raise ValueError(f"snapshot v{snap.version} already exists in {self.url} (snapshots are immutable)")
        if self._local:
            manifest = self._write_local(snap, Path(final))
        else:
            manifest = self._write_object_store(snap, final)
        self._write_latest(snap.version)
        self.prune()
        return manifest

    def _write_local(self, snap: GraphSnapshot, final: Path) -> dict[str, Any]:
        tmp = final.with_name(final.name + ".tmp")
        if tmp.exists():  # left by a writer that crashed mid-way
            shutil.rmtree(tmp)
        if final.exists():  # a directory without manifest: incomplete, from a crash
            shutil.rmtree(final)
        tmp.mkdir(parents=True)
        specs = {}
        for name, data, spec in wire.blobs(snap):
            _write_file_synced(tmp / f"{name}.npy", data)
            specs[name] = spec
        manifest = wire.manifest(snap, specs)
        _write_file_synced(tmp / wire.MANIFEST, wire.manifest_bytes(manifest))
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(final.parent)
        return manifest

    def _write_object_store(self, snap: GraphSnapshot, final: str) -> dict[str, Any]:
        if self.fs.exists(final):
            self.fs.rm(final, recursive=True)
        self.fs.makedirs(final, exist_ok=True)
        specs = {}
        for name, data, spec in wire.blobs(snap):
            self.fs.pipe_file(f"{final}/{name}.npy", data)
            specs[name] = spec
        manifest = wire.manifest(snap, specs)
        self.fs.pipe_file(f"{final}/{wire.MANIFEST}", wire.manifest_bytes(manifest))  # last: marks it complete
        return manifest

    def _write_latest(self, version: int) -> None:
        data = f"{version}\n".encode()
        if self._local:
            tmp = Path(self._path(LATEST + ".tmp"))
            _write_file_synced(tmp, data)
            os.replace(tmp, self._path(LATEST))
            _fsync_dir(Path(self.root))
        else:
            self.fs.pipe_file(self._path(LATEST), data)  # a single-object put is atomic on object stores

    def prune(self) -> list[int]:
        """Delete all but the newest `keep` complete versions, and leftovers of crashed writes; returns deleted."""
        complete = self.versions()
        doomed = complete[: -self.keep] if len(complete) > self.keep else []
        newest = complete[-1] if complete else 0
        for name in self._listdir():
            m = _TMP_DIR.match(name) or _VERSION_DIR.match(name)
            if not m:
                continue
            v = int(m.group(1))
            incomplete = name.endswith(".tmp") or v not in complete
            if v in doomed or (incomplete and v < newest):
                self.fs.rm(self._path(name), recursive=True)
        return doomed

    # ---- reading -----------------------------------------------------------------------------------------------

    def _listdir(self) -> list[str]:
        try:
            entries = self.fs.ls(self.root, detail=False)
        except FileNotFoundError:
            return []
        return [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]

    def versions(self) -> list[int]:
        """Complete versions (those with a manifest), ascending."""
        out = []
        for name in self._listdir():
            m = _VERSION_DIR.match(name)
            if m and self.fs.exists(self._path(name, wire.MANIFEST)):
                out.append(int(m.group(1)))
        return sorted(out)

    def latest_version(self) -> int | None:
        """The newest complete version: LATEST if it names a complete one, else the highest listed."""
        try:
            hint = int(self.fs.cat_file(self._path(LATEST)).decode().strip())
            if self.fs.exists(self._path(self.dirname(hint), wire.MANIFEST)):
                newer = [v for v in self.versions() if v > hint]  # LATEST lags if a crash hit between the two
                return newer[-1] if newer else hint
        except (FileNotFoundError, ValueError):
            pass
        vs = self.versions()
        return vs[-1] if vs else None

    def latest(self, verify: bool = True) -> GraphSnapshot | None:
        v = self.latest_version()
        return None if v is None else self.load(v, verify=verify)

    def manifest(self, version: int) -> dict[str, Any]:
        path = self._path(self.dirname(version), wire.MANIFEST)
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"snapshot v{version} is not in {self.url} (complete versions: {self.versions()})"
            ) from None
        return wire.parse_manifest(data, f"{self.url}/{self.dirname(version)}")

    def blob(self, version: int, name: str) -> bytes:
        """The raw .npy bytes of one array (what the gRPC Snapshot stream sends)."""
        return self.fs.cat_file(self._path(self.dirname(version), f"{name}.npy"))

    def blobs(self, version: int) -> Iterator[tuple[str, bytes]]:
        for name in self.manifest(version)["arrays"]:
            yield name, self.blob(version, name)

    def load(self, version: int, verify: bool = True) -> GraphSnapshot:
        """The snapshot of `version`, exactly as written; with `verify`, every array's sha256 is checked."""
        manifest = self.manifest(version)
        where = f"{self.url}/{self.dirname(version)}"
        return wire.decode(manifest, {n: self.blob(version, n) for n in manifest["arrays"]}, where, verify=verify)

    def age_s(self, version: int) -> float:
        """Seconds since `version` was created (from its meta, 0 if unknown)."""
        created = self.manifest(version).get("meta", {}).get("created_unix_ms")
        return max(0.0, time.time() - int(created) / 1000) if created else 0.0


def _write_file_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
