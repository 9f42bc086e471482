"""Settings of the extractor service (a section of LinksynConfig: `extractor:` in YAML, `LINKSYN_EXTRACTOR__*` in the env)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from linksyn.common.config import Section
from linksyn.common.llm.config import LLMConfig


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
    prompt_version: str = "extract-v1"
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
    """Merge near-synonym KPs by MiniLM embedding similarity (otherwise only the canonical string form is used)."""
    kp_merge_threshold: float = Field(default=0.92, gt=0, le=1)
    """Cosine similarity at or above which a new KP maps onto a known one (0.92: merges 'pythagoras theorem' with
    'pythagorean theorem' (0.96) but keeps "newton's first law" apart from "newton's second law" (0.90))."""
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
