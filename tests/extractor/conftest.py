"""Fixtures of the extractor tests: the real MiniLM embedder, a small set of real-looking seeds."""

from __future__ import annotations

import pytest
from linksyn.common.ids import content_id
from linksyn.v1.records_pb2 import Seed


@pytest.fixture(scope="session")
def embedder():
    from linksyn.extractor.embedding import shared_embedder

    return shared_embedder()


def make_seed(question: str, answer: str, subject: str = "", difficulty: int = 0, source: str = "test") -> Seed:
    return Seed(id=content_id(question, answer), question=question, answer=answer, subject=subject,
                difficulty=difficulty, source=source, lang="en")


FIXTURE_SEEDS = [
    ("A refracting telescope consists of two converging lenses separated by 100 cm. The eye-piece lens has a focal "
     "length of 20 cm. The angular magnification of the telescope is", "A. 4", "college_physics", 0),
    ("Which of the following is the primary function of mitochondria in eukaryotic cells?",
     "B. Producing ATP through cellular respiration", "high_school_biology", 0),
    ("What is the value of $101^{3} - 3 \\cdot 101^{2} + 3 \\cdot 101 -1$?", "The expression is $(101-1)^3 = "
     "\\boxed{1000000}$.", "Counting & Probability", 2),
    ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips "
     "did Natalia sell altogether in April and May?", "Natalia sold 48/2 = 24 clips in May. 48+24 = 72. #### 72", "", 0),
    ("The commerce clause gives Congress the power to regulate which kind of trade?",
     "C. Trade among the several states", "high_school_government_and_politics", 0),
    ("In a market, what happens to the equilibrium price when demand rises and supply stays constant?",
     "A. The equilibrium price rises", "high_school_microeconomics", 0),
    ("Which sorting algorithm has the best worst-case time complexity: quicksort, mergesort or bubble sort?",
     "Mergesort, O(n log n) in the worst case.", "college_computer_science", 0),
    ("Who was the first President of the United States?", "D. George Washington", "high_school_us_history", 0),
]


@pytest.fixture
def fixture_seeds() -> list[Seed]:
    return [make_seed(q, a, s, d, source="gsm8k:train.jsonl:1" if not s else "test") for q, a, s, d in FIXTURE_SEEDS]

