"""Deciding each SynthQA's fate in the sink: kept, a replay, or dropped with a reason.

Two steps. `Features` are computed for a whole batch at once, whatever partitions its records come from: question
hashes, ids, word hashes (one compiled pass, linksyn.sink.tokens), MinHash signatures, LSH keys and the
contamination test. Then each partition's `PartitionScreen` decides its records in offset order, against what that
partition has decided: the questions in its on-disk index (linksyn.sink.index) and in its pending window, and the
recent kept records in its near-duplicate window.

Order: replay (this record was decided already) -> exact duplicate (its normalised question was decided already,
whatever the outcome) -> contaminated (n-gram overlap with an evaluation set) -> near duplicate (MinHash LSH over the
partition's window) -> kept. Decisions enter the pending state at once, so duplicates inside one batch are caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from linksyn.common.ids import id64
from linksyn.sink.decontam import ContaminationIndex
from linksyn.sink.dedup import MinHasher, NearDupWindow, band_keys, lsh_params, short_signatures
from linksyn.sink.index import ABSENT, ExactIndex
from linksyn.sink.tokens import folded_words
from linksyn.v1 import records_pb2

REPLAY = -1
KEPT, DUPLICATE, CONTAMINATED, NEAR_DUPLICATE = 0, 1, 2, 3
OUTCOMES = {KEPT: "kept", DUPLICATE: "duplicate", CONTAMINATED: "contaminated", NEAR_DUPLICATE: "near_duplicate"}
"""Outcome code -> name (the drop reasons are the names of the codes other than KEPT)."""
SINK_DROP_REASONS = tuple(name for code, name in OUTCOMES.items() if code != KEPT)


@dataclass
class Features:
    """Per record to decide, in batch order: what the decisions are taken on."""

    qhash: np.ndarray
    """uint64: the normalised question's hash (linksyn.common.ids.question_hash)."""
    ids: np.ndarray
    """uint64: the record id's first 64 bits."""
    keys: np.ndarray
    """(n, bands) uint64: LSH band keys of the question's MinHash signature."""
    short: np.ndarray
    """(n, num_perm) uint8: the signature's low bits, to verify LSH candidates."""
    contaminated: np.ndarray
    """bool: shares an n-gram with an evaluation set."""

    def __len__(self) -> int:
        return len(self.ids)


class Featurizer:
    """Computes `Features` of a batch (pure; shared by every partition of a replica)."""

    def __init__(self, minhasher: MinHasher, threshold: float, contamination: ContaminationIndex | None = None) -> None:
        self.minhasher = minhasher
        self.bands, self.rows = lsh_params(threshold, minhasher.num_perm)
        self.contamination = contamination

    def features(self, qas: Sequence[records_pb2.SynthQA], folded_questions: Sequence[str],
                 qhashes: Sequence[int], folded_answers: Sequence[str]) -> Features:
        """`folded_*`: linksyn.common.text.fold_text of each question and answer (the caller folded the questions
        for their hashes already)."""
        n = len(qas)
        texts = [t for pair in zip(folded_questions, folded_answers) for t in pair]
        words = folded_words(texts)  # question i is text 2i, its answer 2i+1
        in_question = (words.owners & 1) == 0
        sigs = self.minhasher.signatures(words.hashes[in_question], words.owners[in_question] >> 1, n)
        if self.contamination is not None:
            # the words of "question\nanswer": a question's last words and its answer's first form n-grams too
            dirty = self.contamination.contaminated_words(words.hashes, words.owners >> 1, n)
        else:
            dirty = np.zeros(n, dtype=bool)
        return Features(
            qhash=np.asarray(qhashes, dtype=np.uint64).reshape(n),
            ids=np.fromiter((id64(q.id) for q in qas), dtype=np.uint64, count=n),
            keys=band_keys(sigs, self.bands, self.rows),
            short=short_signatures(sigs),
            contaminated=dirty,
        )


class PartitionScreen:
    """What one partition has decided, and the decisions of its next records."""

    def __init__(self, index: ExactIndex, window: NearDupWindow | None) -> None:
        self.index = index
        self.window = window
        self.pending_questions: dict[int, int] = {}
        """Question hash -> id of the record that first had it, for questions first decided since the last flush."""
        self.pending_duplicates: set[int] = set()
        """Ids of records dropped as duplicates since the last flush."""

    def decide(self, f: Features, rows: np.ndarray) -> np.ndarray:
        """int8 outcome of records `rows` of `f` (this partition's, in offset order)."""
        qh, ids = f.qhash[rows], f.ids[rows]
        n = len(rows)
        owners, codes = self.index.questions(qh)
        from_index = codes != ABSENT
        dropped_before = np.zeros(n, dtype=bool)
        ask = from_index & (owners != ids)
        if ask.any():
            dropped_before[ask] = self.index.dropped_duplicates(ids[ask])
        out = np.full(n, KEPT, dtype=np.int8)
        todo = np.zeros(n, dtype=bool)
        pending_q, pending_d = self.pending_questions, self.pending_duplicates
        owners_l, from_l, before_l = owners.tolist(), from_index.tolist(), dropped_before.tolist()
        for i, (q, rid) in enumerate(zip(qh.tolist(), ids.tolist())):
            own = pending_q.get(q)
            if own is None and from_l[i]:
                own = owners_l[i]
            if own is None:
                pending_q[q] = rid
                todo[i] = True
            elif own == rid or rid in pending_d or before_l[i]:
                out[i] = REPLAY
            else:
                out[i] = DUPLICATE
                pending_d.add(rid)
        dirty = todo & f.contaminated[rows]
        out[dirty] = CONTAMINATED
        todo &= ~dirty
        if self.window is not None and todo.any():
            near = self.window.screen(f.keys[rows], f.short[rows], todo)
            out[near] = NEAR_DUPLICATE
        return out

    def forget_pending(self, qhash: np.ndarray, ids: np.ndarray, duplicate: np.ndarray) -> None:
        """These decisions are in the index now (after a flush): drop them from the pending state."""
        pending_q, pending_d = self.pending_questions, self.pending_duplicates
        for q, rid, dup in zip(qhash.tolist(), ids.tolist(), duplicate.tolist()):
            if dup:
                pending_d.discard(rid)
            elif pending_q.get(q) == rid:
                del pending_q[q]
