"""A small extraction-shaped workload shared by the LLM tests (and importable by other areas' tests)."""

from __future__ import annotations

from linksyn.common.llm.base import ChatRequest, SamplingParams

# The shape the extractor asks for, kept small so the test decodes quickly.
KP_SCHEMA = {
    "type": "object",
    "properties": {
        "knowledge_points": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 24},
            "minItems": 1,
            "maxItems": 3,
        },
        "discipline": {"type": "string", "maxLength": 20},
        "difficulty": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
    },
    "required": ["knowledge_points", "discipline", "difficulty"],
    "additionalProperties": False,
}

QUESTIONS = [
    "What is 2+2?",
    "Why is the sky blue?",
    "In which year did the French Revolution begin, and what were its main causes?",
    "Solve for x: 3x + 7 = 22.",
    "什么是光合作用？",
    "Which organelle is the powerhouse of the cell?",
]


def kp_request(question: str) -> ChatRequest:
    system = ("Extract the knowledge points a question tests, its discipline and its difficulty (1-5). "
              "Reply with JSON only.")
    return ChatRequest(
        messages=({"role": "system", "content": system}, {"role": "user", "content": question}),
        params=SamplingParams(max_tokens=128),
        json_schema=KP_SCHEMA,
        request_id=question[:20],
    )
