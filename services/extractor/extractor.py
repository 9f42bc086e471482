"""The extractor: an annotator (LLM or keyphrase), the KP validator, then KP normalisation and merging, built from
ExtractorConfig.

`Extractor.extract_stream(seeds)` (the stage: annotations in groups as replies come in) and `Extractor.extract(seeds)`
(the gRPC preview: the whole batch) run the same steps. Every annotation's KPs go through the
same validator (linksyn.extractor.kp_check: choice labels, numbers, units, stopwords, single characters and
fragments are dropped, counted by reason); a seed left without a KP falls back to its labelled subdiscipline in
keyphrase mode (as a formula-only problem does) and fails with the drops listed otherwise (an LLM reply: retried,
then dead-lettered). Then every KP maps to its canonical form, merging near-synonyms within a language
(linksyn.extractor.kp_canon).
"""

from __future__ import annotations

import threading
from typing import Iterator, Protocol, Sequence

from linksyn.common.llm.base import LLM
from linksyn.common.llm.embeddings import TextEmbedder, load_embedder
from linksyn.common.taxonomy import Taxonomy, load_taxonomy
from linksyn.extractor.annotation import Outcome, seed_labels
from linksyn.extractor.config import ExtractorConfig
from linksyn.extractor.embedding import MiniLMEmbedder
from linksyn.extractor.keyphrase import KeyphraseExtractor, KeyphraseParams
from linksyn.extractor.kp_canon import KPCanon, MergeSpace
from linksyn.extractor.kp_check import DROP_REASONS, KPValidator
from linksyn.extractor.llm_annotator import LLMAnnotator
from linksyn.extractor.prompt import ExtractionPrompt
from linksyn.extractor.reply import ReplyLimits
from linksyn.v1.records_pb2 import Seed


class Annotator(Protocol):
    annotator: str

    def annotate(self, seeds: Sequence[Seed]) -> list[Outcome]: ...


def merge_spaces(cfg: ExtractorConfig, local: TextEmbedder | None) -> list[MergeSpace]:
    """The KP merger's embedders from `extractor.kp_embedders` (none when kp_merge is off)."""
    if not cfg.kp_merge:
        return []
    spaces = []
    for e in cfg.kp_embedders:
        embedder = load_embedder(e.model, e.languages, e.llm, local=local)
        spaces.append(MergeSpace(embedder.encode, frozenset(e.languages), e.threshold, embedder.name))
    return spaces


class Extractor:
    """Annotate, validate the KPs, then map every KP to its canonical form (one batched embedding call per language
    for unseen forms)."""

    def __init__(self, annotator: Annotator, canon: KPCanon, validator: KPValidator | None = None,
                 taxonomy: Taxonomy | None = None, max_kps: int = 8) -> None:
        """`validator`: the default drops junk and counts ungrounded KPs unless the annotator proposes only KPs of
        the seed's text (`from_text`). `taxonomy`: for the labelled-subdiscipline fallback of such annotators."""
        self.annotator = annotator
        self.canon = canon
        self.from_text = bool(getattr(annotator, "from_text", False))
        self.validator = validator or KPValidator(count_ungrounded=not self.from_text)
        self.taxonomy = taxonomy
        self.max_kps = max_kps
        self.totals: dict[str, int] = {"annotated": 0, "failed": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                       "kps_kept": 0, "kps_ungrounded": 0, "kps_merged": 0,
                                       **{f"kps_dropped_{r}": 0 for r in DROP_REASONS}}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: ExtractorConfig, llm: LLM | None = None,
                    embedder: MiniLMEmbedder | None = None) -> "Extractor":
        """`llm` is required in 'llm' mode; `embedder` (MiniLM) in 'keyphrase' mode or when a KP embedder is
        'minilm'."""
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
        uses_minilm = cfg.kp_merge and any(e.model == "minilm" for e in cfg.kp_embedders)
        if uses_minilm and embedder is None:
            raise ValueError("extractor.kp_embedders names 'minilm', which needs the MiniLM embedder")
        canon = KPCanon(merge_spaces(cfg, embedder))
        from_text = getattr(annotator, "from_text", False)
        validator = KPValidator(drop_ungrounded=cfg.mode == "llm" and cfg.llm_ungrounded_kps == "drop",
                                count_ungrounded=not from_text)
        return cls(annotator, canon, validator, taxonomy, cfg.max_kps)

    def _validate(self, seeds: Sequence[Seed], outcomes: list[Outcome]) -> None:
        """Drop junk KPs of every annotation (counted on its outcome) and keep the first max_kps of the rest; an
        annotation left without any fails, or falls back to the seed's labelled subdiscipline when the annotator
        reads KPs off the text."""
        for seed, o in zip(seeds, outcomes):
            if o.annotation is None:
                continue
            checked = self.validator.check(o.annotation.kps, self.validator.seed_text(seed.question, seed.answer))
            for _, reason in checked.dropped:
                o.kp_drops[reason] = o.kp_drops.get(reason, 0) + 1
            o.ungrounded = checked.ungrounded
            if checked.kept:
                o.annotation.kps = checked.kept[: self.max_kps]
                continue
            label = seed_labels(seed, self.taxonomy) if self.taxonomy is not None and self.from_text else None
            if label is not None and (label.subdiscipline or label.discipline):
                o.annotation.kps = [label.subdiscipline or label.discipline]
                continue
            dropped = ", ".join(f"{kp!r} ({why})" for kp, why in checked.dropped[:8])
            o.annotation, o.cause, o.retryable = None, "reply" if not self.from_text else "input", not self.from_text
            o.error = f"no valid knowledge point: the validator dropped {dropped}"

    def extract(self, seeds: Sequence[Seed]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(seeds)
        for group in self.extract_stream(seeds):
            for i, o in group:
                outcomes[i] = o
        return outcomes  # type: ignore[return-value]

    def extract_stream(self, seeds: Sequence[Seed]) -> Iterator[list[tuple[int, Outcome]]]:
        """(index, Outcome) of every seed, in groups as the annotator finishes them (an LLM annotator streams its
        replies; others give the whole batch as one group); each group's KPs are validated, then canonicalised
        together."""
        stream = getattr(self.annotator, "annotate_stream", None)
        groups = stream(seeds) if stream is not None else [list(enumerate(self.annotator.annotate(seeds)))]
        for group in groups:
            outcomes = [o for _, o in group]
            self._validate([seeds[i] for i, _ in group], outcomes)
            self._normalise(outcomes)
            yield group

    def _normalise(self, outcomes: Sequence[Outcome]) -> None:
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
            self.totals["kps_merged"] = self.canon.merged  # the vocabulary's count (batches may run concurrently)
            for o in outcomes:
                self.totals["annotated" if o.annotation is not None else "failed"] += 1
                self.totals["prompt_tokens"] += o.prompt_tokens
                self.totals["completion_tokens"] += o.completion_tokens
                self.totals["kps_kept"] += len(o.annotation.kps) if o.annotation is not None else 0
                self.totals["kps_ungrounded"] += o.ungrounded
                for reason, n in o.kp_drops.items():
                    self.totals[f"kps_dropped_{reason}"] += n
