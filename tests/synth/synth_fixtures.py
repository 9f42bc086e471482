"""Shared test material for synth: walk paths built from the project's fixture seeds, and a scripted LLM."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable, Sequence

from linksyn.common import modes
from linksyn.common.llm.base import LLM, ChatRequest, Completion
from linksyn.common.seeds.rows import gsm8k_seed, mmlu_csv_seed
from linksyn.v1 import records_pb2

FIXTURE_SEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"


def fixture_seeds() -> list[records_pb2.Seed]:
    """Real fixture seeds: the GSM8K rows and the well-formed MMLU college physics rows."""
    seeds = []
    for i, line in enumerate((FIXTURE_SEEDS / "gsm8k.jsonl").read_text().splitlines()):
        try:
            seeds.append(gsm8k_seed(json.loads(line), f"gsm8k.jsonl:{i}"))
        except Exception:
            continue  # the fixture deliberately holds broken rows
    with open(FIXTURE_SEEDS / "mmlu" / "college_physics_dev.csv", newline="") as fh:
        for i, cells in enumerate(csv.reader(fh)):
            try:
                seeds.append(mmlu_csv_seed(cells, subject="college_physics", source=f"college_physics_dev.csv:{i}"))
            except Exception:
                continue
    return seeds


def path_seed(seed: records_pb2.Seed, kps: Sequence[str], discipline: str, difficulty: int) -> records_pb2.PathSeed:
    return records_pb2.PathSeed(id=seed.id, question=seed.question, answer=seed.answer, kps=list(kps),
                                discipline=discipline, difficulty=difficulty)


def fixture_paths() -> list[records_pb2.WalkPath]:
    """Three paths (link over math seeds, multi_grade over physics seeds, hard on one math seed)."""
    seeds = fixture_seeds()
    math = [s for s in seeds if s.source.startswith("gsm8k")]
    phys = [s for s in seeds if s.source.startswith("college_physics")]
    assert len(math) >= 2 and len(phys) >= 2, (len(math), len(phys))
    return [
        records_pb2.WalkPath(
            id="path-link", kps=["multiplication", "addition"], mode=modes.LINK, target_discipline="mathematics",
            target_difficulty=2, walker="value",
            seeds=[path_seed(s, ["multiplication", "addition"], "mathematics", 2) for s in math[:3]],
        ),
        records_pb2.WalkPath(
            id="path-grades", kps=["kinematics", "momentum"], mode=modes.MULTI_GRADE, target_discipline="physics",
            target_difficulty=3, walker="value",
            seeds=[path_seed(s, ["kinematics", "momentum"], "physics", 4) for s in phys[:2]],
        ),
        records_pb2.WalkPath(
            id="path-hard", kps=["multiplication"], mode=modes.HARD, target_discipline="mathematics",
            target_difficulty=4, walker="value", seeds=[path_seed(math[0], ["multiplication"], "mathematics", 2)],
        ),
    ]


def qa_json(question: str, answer: str = "42", difficulty: int = 3, **extra) -> str:
    return json.dumps({"question": question, "answer": answer, "rationale": "because",
                       "knowledge_points": ["kp a"], "discipline": "mathematics", "difficulty": difficulty} | extra)


class ScriptedLLM(LLM):
    """Answers each request with `reply(request)`; records every generate call (batch sizes)."""

    def __init__(self, reply: Callable[[ChatRequest], Completion | str], name: str = "scripted") -> None:
        super().__init__()
        self.reply = reply
        self.model_name = name
        self.calls: list[list[ChatRequest]] = []

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        self.calls.append(list(requests))
        out = []
        for r in requests:
            c = self.reply(r)
            c = Completion(text=c, prompt_tokens=10, completion_tokens=5, finish_reason="stop") if isinstance(c, str) else c
            self.usage.add(c)
            out.append(c)
        return out
