"""Trainer fixtures: the embedded SmolLM2 tokenizer (parsed from the GGUF once per session) and a tiny random
Llama model over its vocabulary, small enough to train for real on a CPU in seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    from linksyn.common.llm.spec import embedded_gguf_path

    gguf = embedded_gguf_path()
    cache = tmp_path_factory.mktemp("tok")
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(cache)
    tok = AutoTokenizer.from_pretrained(cache)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def make_tiny_model(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(cfg)


@pytest.fixture
def tiny_model(tokenizer):
    return make_tiny_model(tokenizer)


@pytest.fixture
def tiny_spec(tokenizer, tmp_path: Path) -> str:
    """The tiny model saved as a directory: a model spec `hf:DIR` the trainer and the probes load."""
    d = tmp_path / "tiny"
    make_tiny_model(tokenizer).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return f"hf:{d}"


QA = [
    ("What is the derivative of x^2?", "2x"),
    ("What gas do plants absorb for photosynthesis?", "Carbon dioxide"),
    ("Who wrote the Origin of Species?", "Charles Darwin"),
    ("What is 7 times 8?", "56"),
    ("What is the chemical symbol of sodium?", "Na"),
    ("What is the capital of France?", "Paris"),
    ("How many sides does a hexagon have?", "6"),
    ("What force keeps planets in orbit around the Sun?", "Gravity"),
    ("What is the boiling point of water at sea level in Celsius?", "100"),
    ("What organelle produces ATP?", "The mitochondrion"),
]


def write_dataset(folder: Path, n_shards: int = 2, repeat: int = 3) -> Path:
    """A dataset directory shaped like the sink's output: JSONL shards of QA records."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"r{i}-{k}", "question": q, "answer": a} for k in range(repeat) for i, (q, a) in enumerate(QA)]
    for s in range(n_shards):
        with (folder / f"shard-{s:05d}.jsonl").open("w") as f:
            for r in rows[s::n_shards]:
                f.write(json.dumps(r) + "\n")
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "dataset")


def wait_for(pred, timeout: float = 300.0, what: str = "condition"):
    """pred()'s first truthy value, polled every 0.2 s; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{what} not met within {timeout:.0f} s")
