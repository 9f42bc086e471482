"""An immutable, versioned snapshot of the knowledge-point graph: flat numpy arrays (CSR), what the sampler walks.

This dataclass is the contract between the graph service (which builds, writes and streams it) and the sampler
(which loads it and walks it). Every array is plain numpy so it can be written as .npy files, streamed in chunks
over gRPC and memory-mapped; strings are kept as a `StringTable` (one UTF-8 blob + offsets) for the same reason.

Node ids are dense 0..n_kps-1; seed rows are dense 0..n_seeds-1 (their string ids are in `seed_ids`).
Adjacency is symmetric: an edge u-v appears in u's row and in v's row, with the same weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class StringTable:
    """n strings as one UTF-8 blob: string i is blob[offsets[i]:offsets[i+1]]."""

    blob: np.ndarray  # uint8
    offsets: np.ndarray  # int64, len n+1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return bytes(self.blob[self.offsets[i] : self.offsets[i + 1]]).decode("utf-8")

    @classmethod
    def from_list(cls, items: list[str]) -> "StringTable":
        enc = [s.encode("utf-8") for s in items]
        offsets = np.zeros(len(enc) + 1, dtype=np.int64)
        if enc:
            np.cumsum([len(b) for b in enc], out=offsets[1:])
        return cls(np.frombuffer(b"".join(enc), dtype=np.uint8).copy(), offsets)

    def to_list(self) -> list[str]:
        data = self.blob.tobytes()
        o = self.offsets
        return [data[o[i] : o[i + 1]].decode("utf-8") for i in range(len(self))]


@dataclass(frozen=True)
class GraphSnapshot:
    """The KP graph at one version."""

    version: int
    """Monotonic snapshot version (1, 2, ...)."""
    offsets: dict[str, dict[int, int]]
    """Input included: topic -> partition -> next offset (Kafka's convention). Replay resumes from here."""
    disciplines: list[str]
    """Discipline names; *_discipline arrays index into this list (-1 = unknown)."""

    # Knowledge points (nodes), n_kps of them.
    kp_text: StringTable
    """Canonical KP text."""
    kp_discipline: np.ndarray  # int32 (n_kps,)
    """Majority discipline of the KP's seeds."""
    kp_difficulty_hist: np.ndarray  # int64 (n_kps, 5)
    """Seeds of the KP per difficulty grade 1..5 (column 0 is grade 1)."""
    kp_popularity: np.ndarray  # int64 (n_kps,)
    """Seeds attached to the KP (pop(v) of the value function)."""

    # Co-occurrence edges, CSR over KPs, symmetric.
    indptr: np.ndarray  # int64 (n_kps+1,)
    indices: np.ndarray  # int32 (2*n_edges,), neighbours sorted ascending within a row
    weights: np.ndarray  # float32 (2*n_edges,), seeds sharing both KPs

    # KP -> seed rows (the bipartite index), CSR.
    kp_seed_indptr: np.ndarray  # int64 (n_kps+1,)
    kp_seed_indices: np.ndarray  # int32, seed rows sorted ascending within a row

    # Seeds, n_seeds of them, with their KPs (seed -> KP CSR) and full QA text.
    seed_ids: StringTable
    seed_kp_indptr: np.ndarray  # int64 (n_seeds+1,)
    seed_kp_indices: np.ndarray  # int32, KP ids
    seed_discipline: np.ndarray  # int32 (n_seeds,)
    seed_difficulty: np.ndarray  # int8 (n_seeds,), 1..5, 0 unknown
    seed_question: StringTable
    seed_answer: StringTable

    meta: dict[str, str] = field(default_factory=dict)
    """Free-form facts (created_unix_ms, builder version...)."""

    @property
    def n_kps(self) -> int:
        return len(self.kp_popularity)

    @property
    def n_edges(self) -> int:
        return len(self.indices) // 2

    @property
    def n_seeds(self) -> int:
        return len(self.seed_kp_indptr) - 1

    def kp_difficulty(self) -> np.ndarray:
        """Modal difficulty grade 1..5 of each KP (0 if it has no graded seed)."""
        hist = self.kp_difficulty_hist
        grade = hist.argmax(axis=1).astype(np.int8) + 1
        grade[hist.sum(axis=1) == 0] = 0
        return grade

    # ---- flat views (added for the store and the gRPC stream; the fields above are the contract) ----------------

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by name, StringTables split into `<field>.blob` / `<field>.offsets`, in field order."""
        out: dict[str, np.ndarray] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, StringTable):
                out[f"{f.name}.blob"] = v.blob
                out[f"{f.name}.offsets"] = v.offsets
            elif isinstance(v, np.ndarray):
                out[f.name] = v
        return out

    def header(self) -> dict[str, Any]:
        """The non-array part (JSON-friendly): version, offsets, disciplines, meta."""
        return {
            "version": self.version,
            "offsets": {t: {str(p): int(o) for p, o in parts.items()} for t, parts in self.offsets.items()},
            "disciplines": list(self.disciplines),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_parts(cls, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> "GraphSnapshot":
        """Inverse of (header(), arrays()); raises ValueError naming the missing arrays."""
        kwargs: dict[str, Any] = {}
        missing: list[str] = []
        for f in fields(cls):
            if f.name in ("version", "offsets", "disciplines", "meta"):
                continue
            if f.type in ("StringTable", StringTable):
                b, o = arrays.get(f"{f.name}.blob"), arrays.get(f"{f.name}.offsets")
                if b is None or o is None:
                    missing.append(f.name)
                else:
                    kwargs[f.name] = StringTable(b, o)
            elif f.name in arrays:
                kwargs[f.name] = arrays[f.name]
            else:
                missing.append(f.name)
        if missing:
            raise ValueError(f"snapshot v{header.get('version')} lacks arrays {missing}")
        return cls(
            version=int(header["version"]),
            offsets={t: {int(p): int(o) for p, o in parts.items()} for t, parts in header["offsets"].items()},
            disciplines=list(header["disciplines"]),
            meta=dict(header.get("meta", {})),
            **kwargs,
        )

    def differences(self, other: "GraphSnapshot") -> list[str]:
        """Names of the arrays (and 'disciplines') that differ from `other`'s; [] if the graphs are identical.
        Version, offsets and meta are not compared: they describe the snapshot, not the graph."""
        diff = [] if self.disciplines == other.disciplines else ["disciplines"]
        mine, theirs = self.arrays(), other.arrays()
        for name, a in mine.items():
            b = theirs[name]
            if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
                diff.append(name)
        return diff
