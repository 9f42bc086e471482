"""The sampler's counters on disk, so a restart keeps coverage: one .npz file, replaced atomically.

Counts are stored by name (KP text, seed id; non-zero ones only), so the file loads onto any later snapshot.
The targets in force are stored too (probe reports may have moved them away from the configured ones).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.sampler.counters import Counters, decode_names, encode_names
from linksyn.sampler.targets import Targets

FORMAT = "linksyn-sampler-state-1"


def save_state(path: str | os.PathLike[str], counters: Counters, snap: GraphSnapshot, targets: Targets) -> None:
    """Write the counters (keyed by name) and targets to `path` atomically (temp file, fsync, rename)."""
    kp, seed = counters.named(snap)
    kp_names, kp_counts = list(kp), np.array(list(kp.values()), dtype=np.int64)
    seed_names, seed_counts = list(seed), np.array(list(seed.values()), dtype=np.int64)
    kb, ko = encode_names(kp_names)
    sb, so = encode_names(seed_names)
    meta = {
        "format": FORMAT,
        "graph_version": snap.version,
        "paths_emitted": counters.paths_emitted,
        "discipline_counts": counters.discipline_counts,
        "difficulty_counts": counters.difficulty_counts,
        "targets": {"discipline": targets.discipline, "difficulty": targets.difficulty, "default": targets.default},
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
                kp_blob=kb, kp_offsets=ko, kp_counts=kp_counts,
                seed_blob=sb, seed_offsets=so, seed_counts=seed_counts,
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: str | os.PathLike[str], snap: GraphSnapshot) -> tuple[Counters, Targets]:
    """Counters for `snap` and the saved targets. Raises ValueError naming the file if it is not a state file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode("utf-8"))
            kp_names = decode_names(z["kp_blob"], z["kp_offsets"])
            seed_names = decode_names(z["seed_blob"], z["seed_offsets"])
            kp_counts, seed_counts = z["kp_counts"], z["seed_counts"]
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"sampler state file {str(path)!r} cannot be read: {e}") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"sampler state file {str(path)!r} has format {meta.get('format')!r}, expected {FORMAT!r}")
    counters = Counters.from_named(
        snap,
        dict(zip(kp_names, kp_counts.tolist())),
        dict(zip(seed_names, seed_counts.tolist())),
        meta["discipline_counts"],
        meta["difficulty_counts"],
        meta["paths_emitted"],
    )
    t = meta["targets"]
    return counters, Targets(discipline=t["discipline"], difficulty=t["difficulty"], default=t["default"])
