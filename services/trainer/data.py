"""Training data: QA records rendered as text, mixed with a general corpus, tokenised and packed.

Everything streams: QA shards are read one at a time (a shard is what the sink writes, bounded in size) and the
general corpus line by line, so memory does not grow with the dataset. The order is deterministic (seeded shard
and in-shard permutations per epoch), and the stream's position is a small `StreamState` (shard, record, corpus
line, leftover tokens) saved in every checkpoint, so a resumed run continues with exactly the next sequence.

Packing: documents are joined with EOS and cut into fixed-length sequences; the leftover of a document starts the
next sequence. No padding, so every token of every sequence is real text or a separator.
"""

from __future__ import annotations

import glob
import json
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from linksyn.trainer.config import DataConfig

Tokenize = Callable[[list[str]], list[list[int]]]
"""Batch tokenizer: texts -> token ids (no special tokens added)."""


def render_record(record: dict[str, Any], template: str, max_chars: int) -> str:
    """A QA record as training text; a missing field renders empty, over-long text is cut at max_chars."""
    fields = {k: ("" if v is None else v) for k, v in record.items()}
    for key in ("question", "answer", "rationale"):
        fields.setdefault(key, "")
    try:
        text = template.format(**fields)
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"template {template!r} cannot render record {record.get('id', '?')!r}: {e}") from e
    return text[:max_chars]


def shard_files(data: str | Path) -> list[Path]:
    """QA shards of a dataset directory (the sink's JSONL shards, or Parquet when no JSONL), sorted."""
    root = Path(data)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"training data {str(root)!r} is neither a file nor a directory")
    files = sorted(p for p in root.rglob("*.jsonl") if p.is_file())
    if not files:
        files = sorted(p for p in root.rglob("*.parquet") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no .jsonl or .parquet shards under {str(root)!r}")
    return files


def read_shard(path: Path) -> list[dict[str, Any]]:
    """All records of one shard (a shard is bounded in size by the sink)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    records = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{line_no}: invalid JSON: {e}") from e
    return records


def corpus_files(pattern: str | None) -> list[Path]:
    if not pattern:
        return []
    files = sorted(Path(p) for p in glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"general corpus {pattern!r} matches no file")
    return files


@dataclass
class StreamState:
    """Where a PackedStream is: enough to continue with exactly the next sequence."""

    epoch: int = 0
    shard: int = 0
    """Index into this epoch's shard order."""
    record: int = 0
    """Index into the current shard's record order."""
    corpus_file: int = 0
    corpus_line: int = 0
    """Lines of the current corpus file already consumed."""
    qa_tokens: int = 0
    general_tokens: int = 0
    sequences: int = 0
    carry: list[int] = field(default_factory=list)
    """Tokens of a document that did not fit the last sequence."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "StreamState":
        return cls(**d)


class PackedStream:
    """Iterates fixed-length int64 token sequences; `state` is exact after each yielded sequence."""

    def __init__(
        self,
        qa_files: Sequence[Path],
        tokenize: Tokenize,
        eos_id: int,
        cfg: DataConfig,
        general_files: Sequence[Path] = (),
        state: StreamState | None = None,
        tokenize_batch: int = 64,
    ) -> None:
        if not qa_files:
            raise ValueError("PackedStream needs at least one QA shard")
        self.qa_files = list(qa_files)
        self.general_files = list(general_files)
        self.tokenize = tokenize
        self.eos_id = eos_id
        self.cfg = cfg
        self.state = state or StreamState()
        self.tokenize_batch = tokenize_batch
        self._shard_cache: tuple[int, int, list[dict[str, Any]], np.ndarray] | None = None
        self._corpus_fh: tuple[int, Any] | None = None

    # -- QA side ------------------------------------------------------------------------------------------------
    def _shard_order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.qa_files))

    def _shard(self, epoch: int, shard: int) -> tuple[list[dict[str, Any]], np.ndarray]:
        if self._shard_cache is None or self._shard_cache[:2] != (epoch, shard):
            records = read_shard(self.qa_files[self._shard_order(epoch)[shard]])
            order = np.random.default_rng([self.cfg.seed, epoch, shard]).permutation(len(records))
            self._shard_cache = (epoch, shard, records, order)
        return self._shard_cache[2], self._shard_cache[3]

    def _next_qa_texts(self, n: int) -> list[tuple[str, tuple[int, int, int]]]:
        """Up to n (text, position-after) pairs from the QA read cursor, which they advance."""
        out: list[tuple[str, tuple[int, int, int]]] = []
        epoch, shard, rec = self._qa_cursor
        empty_epochs = 0
        while len(out) < n:
            records, order = self._shard(epoch, shard)
            if rec >= len(records):
                shard, rec = shard + 1, 0
                if shard >= len(self.qa_files):
                    epoch, shard = epoch + 1, 0
                    empty_epochs = empty_epochs + 1 if not out else 0
                    if empty_epochs > 1:
                        raise ValueError(f"QA shards {[str(p) for p in self.qa_files]} hold no records")
                continue
            r = records[order[rec]]
            rec += 1
            out.append((render_record(r, self.cfg.template, self.cfg.max_record_chars), (epoch, shard, rec)))
        self._qa_cursor = (epoch, shard, rec)
        return out

    # -- general corpus side ------------------------------------------------------------------------------------
    def _next_general_texts(self, n: int) -> list[tuple[str, tuple[int, int]]]:
        """Up to n (text, position-after) pairs from the corpus read cursor (files cycle)."""
        out: list[tuple[str, tuple[int, int]]] = []
        fi, li = self._gen_cursor
        passes_without_text = 0
        while len(out) < n:
            if fi >= len(self.general_files):
                fi, li = 0, 0
                passes_without_text = passes_without_text + 1 if not out else 0
                if passes_without_text > 1:
                    raise ValueError(f"general corpus {[str(p) for p in self.general_files]} holds no text")
            if self._corpus_fh is None or self._corpus_fh[0] != fi:
                if self._corpus_fh is not None:
                    self._corpus_fh[1].close()
                fh = self.general_files[fi].open(encoding="utf-8", errors="replace")
                for _ in range(li):  # only when resuming mid-file
                    fh.readline()
                self._corpus_fh = (fi, fh)
            line = self._corpus_fh[1].readline()
            if not line:
                self._corpus_fh[1].close()
                self._corpus_fh = None
                fi, li = fi + 1, 0
                continue
            li += 1
            text = line.strip()
            if text and not text.startswith("= "):  # skip empty lines and WikiText section headings
                out.append((text[: self.cfg.max_record_chars], (fi, li)))
        self._gen_cursor = (fi, li)
        return out

    # -- packing --------------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[np.ndarray]:
        st = self.state
        L = self.cfg.seq_len
        buf = np.asarray(st.carry, dtype=np.int64)
        self._qa_cursor = (st.epoch, st.shard, st.record)
        self._gen_cursor = (st.corpus_file, st.corpus_line)
        # Tokenised, not yet consumed documents per side: (tokens, position after the document). The read cursors
        # run ahead of `st`, which only moves when a document is consumed, so `st` stays exact.
        queues: dict[str, deque[tuple[np.ndarray, tuple[int, ...]]]] = {"qa": deque(), "general": deque()}
        while True:
            while len(buf) >= L:
                seq, buf = buf[:L], buf[L:]
                st.carry = buf.tolist()
                st.sequences += 1
                yield seq
            side = self._choose_side(st)
            q = queues[side]
            if not q:
                texts = self._next_qa_texts(self.tokenize_batch) if side == "qa" else \
                    self._next_general_texts(self.tokenize_batch)
                ids = self.tokenize([t for t, _ in texts])
                q.extend((np.asarray(list(tok) + [self.eos_id], dtype=np.int64), pos) for tok, (_, pos) in zip(ids, texts))
            tokens, pos = q.popleft()
            if side == "qa":
                st.epoch, st.shard, st.record = pos
                st.qa_tokens += len(tokens)
            else:
                st.corpus_file, st.corpus_line = pos
                st.general_tokens += len(tokens)
            buf = np.concatenate([buf, tokens])

    def _choose_side(self, st: StreamState) -> str:
        """General text while its share of tokens so far is below the target ratio, else QA."""
        if not self.general_files or self.cfg.general_ratio <= 0:
            return "qa"
        total = st.qa_tokens + st.general_tokens
        return "general" if st.general_tokens < self.cfg.general_ratio * max(total, 1) else "qa"
