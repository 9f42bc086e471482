"""PathBatch -> WalkPath records (full seed QA inline, so synth needs no lookups) and their JSON form."""

from __future__ import annotations

from linksyn.common.ids import content_id
from linksyn.common.modes import mode_name
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.sampler.sampler import PathBatch
from linksyn.v1 import records_pb2


def path_records(batch: PathBatch, snap: GraphSnapshot) -> list[records_pb2.WalkPath]:
    """One WalkPath per path. id = content_id(graph version, KP texts..., seed ids..., path number)."""
    if batch.graph_version != snap.version:
        raise ValueError(f"batch is of graph version {batch.graph_version}, snapshot is {snap.version}")
    kp_text: dict[int, str] = {}
    seed_cache: dict[int, records_pb2.PathSeed] = {}

    def text(k: int) -> str:
        t = kp_text.get(k)
        if t is None:
            t = kp_text[k] = snap.kp_text[k]
        return t

    def seed(s: int) -> records_pb2.PathSeed:
        ps = seed_cache.get(s)
        if ps is None:
            lo, hi = int(snap.seed_kp_indptr[s]), int(snap.seed_kp_indptr[s + 1])
            d = int(snap.seed_discipline[s])
            ps = seed_cache[s] = records_pb2.PathSeed(
                id=snap.seed_ids[s],
                question=snap.seed_question[s],
                answer=snap.seed_answer[s],
                kps=[text(int(k)) for k in snap.seed_kp_indices[lo:hi]],
                discipline=snap.disciplines[d] if d >= 0 else "",
                difficulty=int(snap.seed_difficulty[s]),
            )
        return ps

    out = []
    for i, (kps, seeds) in enumerate(zip(batch.kp_lists(), batch.seed_lists())):
        kp_texts = [text(k) for k in kps]
        path_seeds = [seed(s) for s in seeds]
        d = int(batch.discipline[i])
        number = int(batch.number[i])
        out.append(
            records_pb2.WalkPath(
                id=content_id(snap.version, *kp_texts, *[p.id for p in path_seeds], number),
                kps=kp_texts,
                seeds=path_seeds,
                target_discipline=snap.disciplines[d] if d >= 0 else "",
                target_difficulty=int(batch.difficulty[i]),
                mode=int(batch.mode[i]),
                graph_version=snap.version,
                scores=batch.scores[i, : len(kps)].tolist(),
                walker=batch.walker,
            )
        )
    return out


def path_json(p: records_pb2.WalkPath) -> dict:
    """The JSON object `linksyn sample` prints: kps, seeds (id, question, answer, knowledge_points) and the rest."""
    return {
        "id": p.id,
        "kps": list(p.kps),
        "seeds": [
            {
                "id": s.id,
                "question": s.question,
                "answer": s.answer,
                "knowledge_points": list(s.kps),
                "discipline": s.discipline,
                "difficulty": s.difficulty,
            }
            for s in p.seeds
        ],
        "target_discipline": p.target_discipline,
        "target_difficulty": p.target_difficulty,
        "mode": mode_name(p.mode),
        "graph_version": p.graph_version,
        "scores": list(p.scores),
        "walker": p.walker,
    }
