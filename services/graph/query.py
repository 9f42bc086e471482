"""Queries on a published snapshot (domain code: no I/O): KP lookup by text, neighbours, seeds of a KP.

Snapshots are immutable, so an index built over one can be shared by any number of reader threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from linksyn.common.kp_form import canonical_form
from linksyn.common.snapshots.graph import GraphSnapshot


@dataclass(frozen=True)
class KPInfo:
    id: int
    text: str
    discipline: str
    popularity: int
    difficulty_hist: list[int]


class SnapshotIndex:
    """Read-only queries over one snapshot."""

    def __init__(self, snap: GraphSnapshot) -> None:
        self.snap = snap

    @cached_property
    def _by_text(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.snap.kp_text.to_list())}

    def lookup(self, text: str) -> int | None:
        """KP id of `text`: as given, else in normalised form; None if unknown."""
        i = self._by_text.get(text)
        if i is None:
            i = self._by_text.get(canonical_form(text))
        return i

    def check(self, kp: int) -> int:
        if not 0 <= kp < self.snap.n_kps:
            raise KeyError(f"KP id {kp} is not in snapshot v{self.snap.version} (ids 0..{self.snap.n_kps - 1})")
        return kp

    def info(self, kp: int) -> KPInfo:
        s = self.snap
        d = int(s.kp_discipline[self.check(kp)])
        return KPInfo(
            id=kp,
            text=s.kp_text[kp],
            discipline=s.disciplines[d] if d >= 0 else "",
            popularity=int(s.kp_popularity[kp]),
            difficulty_hist=s.kp_difficulty_hist[kp].tolist(),
        )

    def neighbours(self, kp: int, limit: int) -> list[tuple[int, float]]:
        """(neighbour id, weight), heaviest first (ties by id), at most `limit`."""
        s = self.snap
        lo, hi = s.indptr[self.check(kp)], s.indptr[kp + 1]
        nbr, w = s.indices[lo:hi], s.weights[lo:hi]
        order = np.lexsort((nbr, -w))[:limit]
        return [(int(nbr[i]), float(w[i])) for i in order]

    def seeds_for(self, kp: int, limit: int) -> list[str]:
        """Seed ids of the KP, in seed-row order (order of arrival), at most `limit`."""
        s = self.snap
        rows = s.kp_seed_indices[s.kp_seed_indptr[self.check(kp)] : s.kp_seed_indptr[kp + 1]][:limit]
        return [s.seed_ids[int(r)] for r in rows]
