"""Sink test material: SynthQA records, messages on a partition, the eval-set fixtures folder."""

from __future__ import annotations

import random
from pathlib import Path

from linksyn.common import modes
from linksyn.common.bus.base import Message
from linksyn.common.ids import question_key
from linksyn.synth.synthesis import synth_qa_id
from linksyn.v1 import records_pb2

FIXTURES = Path(__file__).parent / "fixtures"
TOPIC = "linksyn.synth-qa"

_WORDS = ("apple orange river mountain engine number circle force energy planet atom cell market price "
          "triangle angle vector matrix charge field wave light sound heat gas liquid solid metal salt acid "
          "tree leaf root seed bird fish horse train ship plane road bridge tower city village king law").split()


def make_qa(question: str, answer: str = "42", **kw) -> records_pb2.SynthQA:
    base = dict(
        id=synth_qa_id(question, answer), question=question, answer=answer, rationale="r", kps=["kp"],
        discipline="mathematics", difficulty=3, path_id="path-1", source_seed_ids=["seed-a", "seed-b"],
        models=["gen-model"], prompt_version="link-v1", prompt_tokens=100, completion_tokens=40, mode=modes.LINK,
        lang="en",
    )
    return records_pb2.SynthQA(**(base | kw))


def random_questions(n: int, seed: int = 0, words: int = 18) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(_WORDS, k=words)) + f" case {i}?" for i in range(n)]


class MessageFactory:
    """Messages on one partition with increasing offsets, keyed as the synth keys them (by question)."""

    def __init__(self, partition: int = 0) -> None:
        self.partition = partition
        self.offset = 0

    def __call__(self, qas, key=None) -> list[Message]:
        """`key(qa)` -> the record key (default: the synth-qa contract, `question_key`)."""
        out = []
        for qa in qas:
            k = key(qa) if key is not None else question_key(qa.question)
            out.append(Message(TOPIC, self.partition, self.offset, k, qa.SerializeToString()))
            self.offset += 1
        return out
