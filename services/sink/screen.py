"""Deciding each SynthQA's fate in the sink: kept, a replay, or dropped with a reason (in memory, no I/O).

Order: replay (id already decided) -> exact duplicate (normalised question) -> contaminated (n-gram overlap with an
evaluation set) -> near duplicate (MinHash LSH). Kept records enter the indexes at once, so duplicates inside one
batch are caught too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from linksyn.sink.decontam import ContaminationIndex
from linksyn.sink.dedup import DedupIndex, MinHasher, id64, question_hash
from linksyn.v1 import records_pb2

KEPT = "kept"
REPLAY = "replay"
SINK_DROP_REASONS = ("duplicate", "contaminated", "near_duplicate")


@dataclass
class ScreenResult:
    """Per record, in batch order: its outcome, id (64-bit), question hash and MinHash signature (row)."""

    outcomes: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    qhashes: list[int] = field(default_factory=list)
    sigs: np.ndarray | None = None


class Screen:
    """The sink's memory of the stream and the checks against it."""

    def __init__(
        self, minhasher: MinHasher, dedup: DedupIndex, contamination: ContaminationIndex | None = None
    ) -> None:
        self.minhasher = minhasher
        self.dedup = dedup
        self.contamination = contamination

    def screen(self, qas: Sequence[records_pb2.SynthQA]) -> ScreenResult:
        texts = [q.question for q in qas]
        sigs = self.minhasher.signatures(texts)
        if self.contamination is not None:
            dirty = self.contamination.contaminated([f"{q.question}\n{q.answer}" for q in qas])
        else:
            dirty = np.zeros(len(qas), dtype=bool)
        keys = self.dedup.keys(sigs) if len(qas) else None
        res = ScreenResult(sigs=sigs)
        for i, qa in enumerate(qas):
            rid = id64(qa.id)
            qh = question_hash(qa.question)
            res.ids.append(rid)
            res.qhashes.append(qh)
            if rid in self.dedup.seen_ids:
                res.outcomes.append(REPLAY)
                continue
            self.dedup.seen_ids.add(rid)
            if qh in self.dedup.question_hashes:
                res.outcomes.append("duplicate")
            elif dirty[i]:
                res.outcomes.append("contaminated")
            elif self.dedup.near_duplicate_of(sigs[i], keys[i]) is not None:
                res.outcomes.append("near_duplicate")
            else:
                self.dedup.add(qh, sigs[i], keys[i])
                res.outcomes.append(KEPT)
        return res
