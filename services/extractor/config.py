"""Settings of the extractor service (a section of LinksynConfig: `extractor:` in YAML, `LINKSYN_EXTRACTOR__*` in the env)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from linksyn.common.config import Section
from linksyn.common.llm.config import LLMConfig
from linksyn.common.llm.embeddings import LOCAL_EMBEDDER, check_embedder_spec


class KPEmbedderConfig(Section):
    """One embedder the KP merger may use, for the languages it was trained on."""

    model: str = LOCAL_EMBEDDER
    """'minilm' (the packaged all-MiniLM-L6-v2, in-process, English only) or 'openai:BASE_URL#MODEL' (an
    OpenAI-compatible /v1/embeddings endpoint, e.g. vLLM serving the multilingual BAAI/bge-m3)."""
    languages: list[Literal["en", "zh"]] = ["en"]
    """Script classes whose KPs this embedder compares: 'en' (KPs in Latin script), 'zh' (KPs with CJK
    characters). Only the languages the model was trained on: KPs of a language no embedder covers merge by
    canonical form only, and KPs of different scripts never merge by embedding."""
    threshold: float = Field(default=0.92, gt=0, le=1)
    """Cosine similarity at or above which a new KP maps onto a known one of its language (MiniLM at 0.92 merges
    'pythagoras theorem' with 'pythagorean theorem' (0.96) but keeps "newton's first law" apart from "newton's
    second law" (0.90)); each model needs its own."""
    llm: LLMConfig = LLMConfig()
    """Timeouts, retries, max_reply_bytes and api_key_env of an 'openai:' endpoint."""

    @field_validator("model")
    @classmethod
    def _spec(cls, v: str) -> str:
        return check_embedder_spec(v)

    @model_validator(mode="after")
    def _minilm_is_english(self) -> "KPEmbedderConfig":
        if self.model == LOCAL_EMBEDDER and set(self.languages) != {"en"}:
            raise ValueError(f"extractor.kp_embedders: {LOCAL_EMBEDDER!r} (all-MiniLM-L6-v2) was trained on English "
                             f"only; languages must be ['en'], got {self.languages}")
        if not self.languages:
            raise ValueError(f"extractor.kp_embedders: {self.model!r} covers no language")
        return self


class ExtractorConfig(Section):
    """The extractor stage: which annotator, its model and prompt, the taxonomy, KP limits and merging."""

    mode: Literal["llm", "keyphrase"] = "llm"
    """'llm': an LLM extracts KPs, discipline and difficulty (structured output); 'keyphrase': the LLM-free
    extractor (MiniLM keyphrases, nearest-centroid discipline, fitted linear difficulty model), for millions of seeds
    on CPUs."""
    model: str = "embedded"
    """Model spec for `linksyn.common.llm.load_llm` in 'llm' mode ('embedded' = packaged SmolLM2 in-process;
    'openai:URL#MODEL', 'hf:PATH_OR_ID', 'vllm:MODEL')."""
    llm: LLMConfig = LLMConfig()
    """Engine options of the model (timeouts, concurrency, retries, batch size, device)."""
    prompt_version: str = "extract-v2"
    """Prompt file `services/extractor/prompts/<version>.md`; recorded in AnnotatedSeed.annotator."""
    max_tokens: int = Field(default=192, ge=16)
    """Most completion tokens per seed (the JSON reply is short; a reply cut here fails to parse and is retried)."""
    temperature: float = Field(default=0.0, ge=0)
    """Sampling temperature (0 = greedy: the same seed gets the same annotation)."""
    max_seed_chars: int = Field(default=4000, ge=100)
    """Question and answer are each cut to this many characters in the prompt."""
    taxonomy_path: str | None = None
    """YAML taxonomy replacing the packaged default (`services/common/taxonomy.yaml` documents the format)."""
    trust_seed_labels: bool = True
    """Labels a seed carries (discipline/subject -> discipline, MATH level or MMLU prefix -> difficulty) override
    the annotator's prediction."""
    max_kps: int = Field(default=8, ge=1, le=32)
    """Most knowledge points kept per seed."""
    max_kp_chars: int = Field(default=64, ge=8)
    """Longest knowledge point in characters; longer ones are dropped."""
    max_kp_words: int = Field(default=8, ge=1)
    """Longest knowledge point in words; longer ones are dropped."""
    kp_merge: bool = True
    """Merge near-synonym KPs by embedding similarity with `kp_embedders` (off: only the canonical string form)."""
    kp_embedders: list[KPEmbedderConfig] = [KPEmbedderConfig()]
    """Embedders the KP merger uses, each for its languages (the first that covers a language wins). Default:
    MiniLM for English; Chinese KPs then merge by canonical form only. Add e.g. {model:
    'openai:http://vllm:8000/v1#BAAI/bge-m3', languages: [zh], threshold: 0.9} to merge Chinese near-synonyms."""
    llm_ungrounded_kps: Literal["keep", "drop"] = "keep"
    """'llm' mode: what to do with a KP that does not occur in its seed's text (after normalisation): 'keep' (an
    LLM may name the concept a question tests without its words: "ohm's law" for a question on current and
    voltage; counted as ungrounded in the report and metrics) or 'drop' (only KPs of the seed's own words)."""
    keyphrase_top_n: int = Field(default=5, ge=1, le=32)
    """Keyphrases kept per seed in 'keyphrase' mode."""
    keyphrase_max_ngram: int = Field(default=3, ge=1, le=6)
    """Longest keyphrase candidate in words."""
    keyphrase_diversity: float = Field(default=0.5, ge=0, le=1)
    """MMR diversity: 0 ranks by relevance alone, 1 by novelty alone."""
    embed_batch_size: int = Field(default=64, ge=1)
    """Texts per MiniLM forward pass (contextual keyphrase extraction; texts are sorted by length first)."""
    keyphrase_tokens: Literal["contextual", "static"] = "contextual"
    """Token vectors of the keyphrase extractor: 'contextual' runs MiniLM over every seed (best KPs, ~5-20 seeds/s
    per CPU core); 'static' looks each token up in a table of context-free MiniLM token vectors (no transformer
    pass per seed: hundreds of seeds/s per core, at some loss of quality; bench/extract.py measures both)."""
    keyphrase_batch_size: int = Field(default=256, ge=1)
    """Seeds scored together (candidate vectors and MMR are computed for the whole batch at once)."""
    keyphrase_max_tokens: int = Field(default=256, ge=16, le=256)
    """Tokens of question + answer read per seed by the keyphrase extractor (the rest is not ranked)."""
