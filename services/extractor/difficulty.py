"""Difficulty 1-5 without an LLM: a multinomial logistic regression over the seed's MiniLM vector and a few
surface features, with weights shipped in the package (`difficulty_<tokens>.json`, a few KB).

The weights are fitted by `scripts/fit_difficulty.py` on the labelled seeds in ../shared/data (MMLU dev/val with the
level their subject prefix implies, MATH with its Level 1-5), using only the seeds on the fitting side of
`is_held_out`; bench/extract.py evaluates on held-out seeds only. One file per token mode, because contextual and
static seed vectors live in different spaces.

Features (`surface_features`): the unit-norm seed vector (384), log question length, log answer length, the share of
LaTeX/math characters and of digits; standardised with the fitting data's mean and std stored beside the weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

SURFACE_FEATURES = ("log_question_chars", "log_answer_chars", "math_char_share", "digit_share")


def model_path(tokens: str) -> Path:
    """The packaged weights for a token mode ('contextual' or 'static')."""
    return Path(__file__).with_name(f"difficulty_{tokens}.json")


def is_held_out(seed_id: str, folds: int = 5) -> bool:
    """The evaluation side of the fixed fitting split: a fifth of seeds, chosen by a hash of the seed id (so the
    split does not depend on file order or on which seeds a run loads)."""
    return int(hashlib.sha256(seed_id.encode()).hexdigest()[:8], 16) % folds == 0


_MATH_CHARS = re.compile(r"[\\$^_{}=+*]")
_DIGITS = re.compile(r"\d")


def surface_features(questions: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """(n, 4) float32: log1p question chars, log1p answer chars, share of math characters (\\ $ ^ _ { } = + *),
    share of digits, over question + answer."""
    out = np.zeros((len(questions), len(SURFACE_FEATURES)), dtype=np.float32)
    for i, (q, a) in enumerate(zip(questions, answers)):
        text = q + a
        n = max(1, len(text))
        out[i] = (math.log1p(len(q)), math.log1p(len(a)), len(_MATH_CHARS.findall(text)) / n,
                  len(_DIGITS.findall(text)) / n)
    return out


@dataclass(frozen=True)
class DifficultyModel:
    """Linear softmax classifier: level = classes[argmax(W @ standardised(x) + b)]."""

    weights: np.ndarray
    """(classes, features) float32."""
    bias: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    classes: tuple[int, ...]
    info: dict
    """How the weights were fitted (data, split, regularisation, held-out accuracy)."""

    def features(self, doc_vecs: np.ndarray, questions: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        x = np.concatenate([doc_vecs.astype(np.float32), surface_features(questions, answers)], axis=1)
        if x.shape[1] != self.weights.shape[1]:
            raise ValueError(f"difficulty model expects {self.weights.shape[1]} features, got {x.shape[1]} "
                             f"(seed vectors of dim {doc_vecs.shape[1]})")
        return (x - self.mean) / self.std

    def predict(self, doc_vecs: np.ndarray, questions: Sequence[str], answers: Sequence[str]) -> list[int]:
        """A level per seed from its unit-norm vector and its text."""
        if len(doc_vecs) == 0:
            return []
        logits = self.features(doc_vecs, questions, answers) @ self.weights.T + self.bias
        return [self.classes[j] for j in np.argmax(logits, axis=1)]

    def to_json(self) -> str:
        return json.dumps({
            "classes": list(self.classes), "features": [f"vec{i}" for i in range(self.weights.shape[1] - 4)]
            + list(SURFACE_FEATURES), "weights": np.round(self.weights, 5).tolist(),
            "bias": np.round(self.bias, 5).tolist(), "mean": np.round(self.mean, 6).tolist(),
            "std": np.round(self.std, 6).tolist(), "info": self.info,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "DifficultyModel":
        d = json.loads(text)
        return cls(np.asarray(d["weights"], dtype=np.float32), np.asarray(d["bias"], dtype=np.float32),
                   np.asarray(d["mean"], dtype=np.float32), np.asarray(d["std"], dtype=np.float32),
                   tuple(int(c) for c in d["classes"]), d.get("info", {}))


def load_difficulty_model(tokens: str) -> DifficultyModel | None:
    """The packaged model for a token mode, or None when it has not been fitted (the extractor then falls back to
    the readability heuristic)."""
    path = model_path(tokens)
    if not path.is_file():
        return None
    return DifficultyModel.from_json(path.read_text(encoding="utf-8"))
