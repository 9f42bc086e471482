"""What a StartRun or Probe request may name: model specs, data and benchmark paths, checked against the trainer's
configuration before anything is loaded or launched (pure; no file is opened).

A request comes from the network: its `model` could name a hub id to download or any file the service can read, its
`data` any folder, its benchmarks any path. So a model spec must be the configured one, one of
`trainer.allowed_models`, or an `hf:` path under an allowed root (a checkpoint of an earlier run); data and
benchmark folders must lie under an allowed root. The allowed roots are `trainer.dataset`, `trainer.out_dir` and
`trainer.allowed_roots`. Paths are compared after normalising `.` and `..` (and, for runs in this process, after
resolving symbolic links, so a link cannot lead out of a root); URL roots (s3://bucket/prefix) match by prefix.
"""

from __future__ import annotations

import os
import posixpath
import re

from linksyn.common.config import redact_url_passwords
from linksyn.trainer.config import TrainerConfig

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
MAX_CHARS = 4096
"""Longest model spec or path a request may send."""


class NotAllowed(ValueError):
    """A request names something the configuration does not allow; the message says what and how to allow it."""


def _shown(value: str) -> str:
    value = redact_url_passwords(value)
    return repr(value[:200] + ("..." if len(value) > 200 else ""))


def _plain(value: str, what: str) -> str:
    if not value or len(value) > MAX_CHARS or _UNSAFE.search(value) or value.startswith("-"):
        raise NotAllowed(f"{what} {_shown(value)} is empty, over {MAX_CHARS} characters, starts with '-' or holds "
                         "control characters")
    return value


def normal_location(location: str, resolve: bool) -> str:
    """A path or URL with `.`/`..` folded (a URL keeps its scheme and bucket); `resolve` also makes a local path
    absolute with its symbolic links resolved."""
    m = _URL.match(location)
    if m:
        rest = location[m.end():]
        return m.group() + posixpath.normpath("/" + rest).lstrip("/")
    if resolve:
        return os.path.realpath(location)
    return posixpath.normpath(location)


def allowed_roots(cfg: TrainerConfig, resolve: bool) -> list[str]:
    return [normal_location(r, resolve) for r in (cfg.dataset, cfg.out_dir, *cfg.allowed_roots)]


def _under(location: str, roots: list[str]) -> bool:
    return any(location == r or location.startswith(r.rstrip("/") + "/") for r in roots)


def check_location(location: str, cfg: TrainerConfig, what: str, resolve: bool) -> str:
    """`location` (a folder or file a request names) if it lies under an allowed root, else NotAllowed."""
    _plain(location, what)
    found = normal_location(location, resolve)
    if ".." in found.split("/") or not _under(found, allowed_roots(cfg, resolve)):
        raise NotAllowed(
            f"{what} {_shown(location)} is not under an allowed root (trainer.dataset, trainer.out_dir, "
            f"trainer.allowed_roots: {', '.join(_shown(r) for r in allowed_roots(cfg, False))})"
        )
    return location


def check_model(spec: str, cfg: TrainerConfig, resolve: bool) -> str:
    """`spec` if a request may train or probe it: trainer.model, one of trainer.allowed_models, or an hf: path
    (not a hub id) under an allowed root; else NotAllowed."""
    _plain(spec, "model spec")
    if spec == cfg.model or spec in cfg.allowed_models:
        return spec
    scheme, _, target = spec.partition(":")
    if scheme == "hf" and target and target != "embedded":
        try:
            return "hf:" + check_location(target, cfg, "model path", resolve)
        except NotAllowed:
            pass
    raise NotAllowed(
        f"model spec {_shown(spec)} is not allowed: a request may name trainer.model, one of "
        "trainer.allowed_models, or hf:PATH under trainer.dataset, trainer.out_dir or trainer.allowed_roots"
    )


def check_benchmark(spec: str, cfg: TrainerConfig, resolve: bool) -> str:
    """A probe benchmark KIND:DIR a request names: one of trainer.probe.benchmarks, or DIR under an allowed root."""
    _plain(spec, "benchmark")
    if spec in cfg.probe.benchmarks:
        return spec
    kind, sep, folder = spec.partition(":")
    if not sep or not folder:
        raise NotAllowed(f"benchmark {_shown(spec)}: expected KIND:DIR")
    return f"{kind}:{check_location(folder, cfg, 'benchmark folder', resolve)}"
