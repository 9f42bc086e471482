"""Test data of the graph tests: a hand-made seed set whose graph is known exactly (EXPECTED), synthetic batches."""

from __future__ import annotations

import numpy as np

from linksyn.graph.build import SeedBatch
from linksyn.v1 import records_pb2

# seed id, KPs, discipline, difficulty
HAND_SEEDS = [
    ("s1", ["a", "b", "c"], "math", 2),
    ("s2", ["b", "c"], "physics", 3),
    ("s3", ["c", "d"], "physics", 3),
    ("s4", ["e"], "", 0),
    ("s5", ["a", "a", "b"], "math", 5),  # a repeated KP counts once
    ("s6", ["f"], "physics", 4),
    ("s7", ["f", "e"], "math", 1),  # f: one physics seed, one math seed -> tie -> "math" (alphabetical)
]

# KP ids follow first appearance: a0 b1 c2 d3 e4 f5; seed rows s1..s7 = 0..6.
EXPECTED = {
    "kps": ["a", "b", "c", "d", "e", "f"],
    "edges": {(0, 1): 2, (0, 2): 1, (1, 2): 2, (2, 3): 1, (4, 5): 1},
    "indptr": [0, 2, 4, 7, 8, 9, 10],
    "indices": [1, 2, 0, 2, 0, 1, 3, 2, 5, 4],
    "weights": [2, 1, 2, 2, 1, 2, 1, 1, 1, 1],
    "popularity": [2, 3, 3, 1, 2, 2],
    "hist": [
        [0, 1, 0, 0, 1],
        [0, 1, 1, 0, 1],
        [0, 1, 2, 0, 0],
        [0, 0, 1, 0, 0],
        [1, 0, 0, 0, 0],
        [1, 0, 0, 1, 0],
    ],
    "disciplines": ["math", "physics"],
    "kp_discipline": [0, 0, 1, 1, 0, 0],
    "kp_seeds": [[0, 4], [0, 1, 4], [0, 1, 2], [2], [3, 6], [5, 6]],
    "seed_kps": [[0, 1, 2], [1, 2], [2, 3], [4], [0, 1], [5], [4, 5]],
    "seed_discipline": [0, 1, 1, -1, 0, 1, 0],
    "seed_difficulty": [2, 3, 3, 0, 5, 4, 1],
}


def annotated(seed_id: str, kps: list[str], discipline: str = "", difficulty: int = 0) -> records_pb2.AnnotatedSeed:
    return records_pb2.AnnotatedSeed(
        seed=records_pb2.Seed(id=seed_id, question=f"question of {seed_id}?", answer=f"answer of {seed_id}"),
        kps=kps,
        discipline=discipline,
        difficulty=difficulty,
        annotator="test",
    )


def synthetic_batch(n_seeds: int, n_kps: int = 500, seed: int = 0, prefix: str = "s") -> SeedBatch:
    """Random seeds with Zipf-ish KP popularity, 1-6 KPs each (for property tests)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 7, size=n_seeds)
    kp = np.minimum(rng.zipf(1.3, size=int(counts.sum())) - 1, n_kps - 1)
    indptr = np.zeros(n_seeds + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    discs = ["math", "physics", "law", ""]
    return SeedBatch(
        seed_ids=[f"{prefix}{i}" for i in range(n_seeds)],
        kp_indptr=indptr,
        kps=[f"kp{k}" for k in kp],
        discipline=[discs[i % 4] for i in range(n_seeds)],
        difficulty=rng.integers(0, 6, size=n_seeds).astype(np.int8),
        question=[f"q{i} é" for i in range(n_seeds)],
        answer=[f"a{i}" for i in range(n_seeds)],
    )
