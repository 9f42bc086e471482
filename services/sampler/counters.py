"""What the sampler has emitted so far: KP coverage, seed use, realised class counts, paths emitted.

Counts live in arrays indexed by the current snapshot's KP ids and seed rows (fast to read and update), but their
identity is the KP text and the seed id: on a snapshot swap they are carried over by name, and counts of KPs or
seeds the new snapshot no longer has are kept aside ("dormant") so that nothing is lost if they come back and
nothing is lost on persist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from linksyn.common.snapshots.graph import GraphSnapshot, StringTable


def _index_of(names: list[str]) -> dict[str, int]:
    return {s: i for i, s in enumerate(names)}


@dataclass
class Counters:
    kp_cov: np.ndarray  # int64 (n_kps,): emitted paths containing the KP
    seed_use: np.ndarray  # int64 (n_seeds,): times the seed was put on an emitted path
    discipline_counts: dict[str, int] = field(default_factory=dict)
    """Emitted paths per discipline name (a path's discipline is its start KP's)."""
    difficulty_counts: dict[str, int] = field(default_factory=dict)
    """Emitted paths per difficulty grade "1".."5" (the start KP's modal grade)."""
    paths_emitted: int = 0
    dormant_kp: dict[str, int] = field(default_factory=dict)
    dormant_seed: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, snap: GraphSnapshot) -> "Counters":
        return cls(np.zeros(snap.n_kps, dtype=np.int64), np.zeros(snap.n_seeds, dtype=np.int64))

    def remapped(self, old: GraphSnapshot, new: GraphSnapshot) -> "Counters":
        """The same counts indexed by `new`'s KP ids and seed rows."""
        kp = dict(self.dormant_kp)
        nz = np.flatnonzero(self.kp_cov)
        for i in nz:
            kp[old.kp_text[int(i)]] = kp.get(old.kp_text[int(i)], 0) + int(self.kp_cov[i])
        sd = dict(self.dormant_seed)
        for i in np.flatnonzero(self.seed_use):
            sd[old.seed_ids[int(i)]] = sd.get(old.seed_ids[int(i)], 0) + int(self.seed_use[i])
        return Counters.from_named(new, kp, sd, self.discipline_counts, self.difficulty_counts, self.paths_emitted)

    @classmethod
    def from_named(
        cls,
        snap: GraphSnapshot,
        kp: dict[str, int],
        seed: dict[str, int],
        discipline_counts: dict[str, int],
        difficulty_counts: dict[str, int],
        paths_emitted: int,
    ) -> "Counters":
        """Counters for `snap` from counts keyed by KP text and seed id."""
        c = cls.empty(snap)
        c.discipline_counts = dict(discipline_counts)
        c.difficulty_counts = dict(difficulty_counts)
        c.paths_emitted = int(paths_emitted)
        if kp:
            _place(kp, snap.kp_text.to_list(), c.kp_cov, c.dormant_kp)
        if seed:
            _place(seed, snap.seed_ids.to_list(), c.seed_use, c.dormant_seed)
        return c

    def named(self, snap: GraphSnapshot) -> tuple[dict[str, int], dict[str, int]]:
        """(KP text -> coverage, seed id -> use), non-zero counts only, dormant ones included."""
        kp = dict(self.dormant_kp)
        for i in np.flatnonzero(self.kp_cov):
            kp[snap.kp_text[int(i)]] = kp.get(snap.kp_text[int(i)], 0) + int(self.kp_cov[i])
        sd = dict(self.dormant_seed)
        for i in np.flatnonzero(self.seed_use):
            sd[snap.seed_ids[int(i)]] = sd.get(snap.seed_ids[int(i)], 0) + int(self.seed_use[i])
        return kp, sd


def encode_names(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as (blob, offsets) arrays, for persisting counters keyed by name."""
    t = StringTable.from_list(names)
    return t.blob, t.offsets


def decode_names(blob: np.ndarray, offsets: np.ndarray) -> list[str]:
    return StringTable(blob, offsets).to_list()


def _place(counts: Mapping[str, int], names: list[str], dense: np.ndarray, dormant: dict[str, int]) -> None:
    """Add counts keyed by name into `dense` (indexed like `names`); names not in the snapshot wait in `dormant`."""
    idx = _index_of(names)
    for name, n in counts.items():
        i = idx.get(name)
        if i is None:
            dormant[name] = n
        else:
            dense[i] += n
