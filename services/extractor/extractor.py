"""The extractor: an annotator (LLM or keyphrase) followed by KP normalisation, built from ExtractorConfig.

`Extractor.extract(seeds)` is what the stage and the gRPC preview both call.
"""

from __future__ import annotations

import threading
from typing import Protocol, Sequence

from linksyn.common.llm.base import LLM
from linksyn.common.taxonomy import load_taxonomy
from linksyn.extractor.annotation import Outcome
from linksyn.extractor.config import ExtractorConfig
from linksyn.extractor.embedding import MiniLMEmbedder
from linksyn.extractor.keyphrase import KeyphraseExtractor, KeyphraseParams
from linksyn.extractor.kp_canon import KPCanon
from linksyn.extractor.llm_annotator import LLMAnnotator
from linksyn.extractor.prompt import ExtractionPrompt
from linksyn.extractor.reply import ReplyLimits
from linksyn.v1.records_pb2 import Seed


class Annotator(Protocol):
    annotator: str

    def annotate(self, seeds: Sequence[Seed]) -> list[Outcome]: ...


class Extractor:
    """Annotate, then map every KP to its canonical form (one batched embedding call for unseen forms)."""

    def __init__(self, annotator: Annotator, canon: KPCanon) -> None:
        self.annotator = annotator
        self.canon = canon
        self.totals = {"annotated": 0, "failed": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: ExtractorConfig, llm: LLM | None = None,
                    embedder: MiniLMEmbedder | None = None) -> "Extractor":
        """`llm` is required in 'llm' mode; `embedder` in 'keyphrase' mode or when KP merging is on."""
        taxonomy = load_taxonomy(cfg.taxonomy_path)
        limits = ReplyLimits(cfg.max_kps, cfg.max_kp_chars, cfg.max_kp_words)
        annotator: Annotator
        if cfg.mode == "llm":
            if llm is None:
                raise ValueError("extractor mode 'llm' needs an LLM (model spec in extractor.model)")
            prompt = ExtractionPrompt.load(cfg.prompt_version, taxonomy, limits)
            annotator = LLMAnnotator(
                llm, taxonomy, prompt, limits, max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                max_seed_chars=cfg.max_seed_chars, trust_seed_labels=cfg.trust_seed_labels,
            )
        else:
            if embedder is None:
                raise ValueError("extractor mode 'keyphrase' needs the MiniLM embedder")
            params = KeyphraseParams(top_n=cfg.keyphrase_top_n, max_ngram=cfg.keyphrase_max_ngram,
                                     diversity=cfg.keyphrase_diversity, batch_size=cfg.keyphrase_batch_size,
                                     encoder_batch_size=cfg.embed_batch_size, tokens=cfg.keyphrase_tokens,
                                     max_tokens=cfg.keyphrase_max_tokens)
            annotator = KeyphraseExtractor(embedder, taxonomy, params, trust_seed_labels=cfg.trust_seed_labels)
        if cfg.kp_merge and embedder is None:
            raise ValueError("extractor.kp_merge needs the MiniLM embedder")
        canon = KPCanon(embedder.encode if cfg.kp_merge and embedder else None, cfg.kp_merge_threshold)
        return cls(annotator, canon)

    def extract(self, seeds: Sequence[Seed]) -> list[Outcome]:
        outcomes = self.annotator.annotate(seeds)
        done = [o for o in outcomes if o.annotation is not None]
        canonical = self.canon.canonicalise([o.annotation.kps for o in done])  # type: ignore[union-attr]
        for o, kps in zip(done, canonical):
            if kps:
                o.annotation.kps = kps  # type: ignore[union-attr]
            else:
                before = o.annotation.kps  # type: ignore[union-attr]
                o.annotation, o.cause = None, "normalisation"
                o.error = f"no knowledge point left after normalisation of {before!r:.120}"
        with self._lock:
            for o in outcomes:
                self.totals["annotated" if o.annotation is not None else "failed"] += 1
                self.totals["prompt_tokens"] += o.prompt_tokens
                self.totals["completion_tokens"] += o.completion_tokens
        return outcomes
