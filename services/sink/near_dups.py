"""The global near-duplicate pass over a finished dataset: datatrove's MinHash deduplication, run by its local
executor (one machine, `workers` processes; datatrove's Slurm and Ray executors run the same steps on a cluster).

The stream catches what it can see: exact duplicates everywhere (every record of a question meets in one
partition), near duplicates inside a partition's recent window. Near duplicates in different partitions, or
further apart than the window, are only found by comparing the whole dataset, which this pass does, with the sink's
own settings: 3-word shingles of linksyn's words (linksyn.common.text.word_tokens, wrapped as a datatrove word
tokenizer, datatrove's own text normalisation off), and the (bands, rows) LSH parameters the sink uses for its
threshold. datatrove keeps one record of each cluster of candidates (it does not verify candidates' similarity, so
it removes a little more than the sink would).

The four datatrove steps, each resumable (a task that completed is skipped when the command runs again with the same
work folder): signatures per task -> duplicate pairs per LSH band -> clusters -> the dataset rewritten without the
removed records, in the dataset's layout (data/<format>/part-NNNNN.<ext> and a card), so `datasets.load_dataset`
reads the result as it reads the sink's output.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import fsspec
import orjson
import pyarrow.parquet as pq
from linksyn.common.dataset import FORMAT_EXT, DatasetTotals
from linksyn.common.text import word_tokens
from linksyn.sink.card import render_card
from linksyn.sink.config import SinkConfig
from linksyn.sink.dedup import lsh_params
from linksyn.sink.store import ROW_SCHEMA

Format = Literal["jsonl", "parquet"]
_TEXT = "question"
_ID = "id"


def _word_tokenizer() -> Any:
    from datatrove.utils.word_tokenizers import WordTokenizer

    class LinksynWords(WordTokenizer):
        """linksyn's words (the sink's shingles are made of these) as a datatrove word tokenizer."""

        def word_tokenize(self, text: str) -> list[str]:
            return word_tokens(text)

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    return LinksynWords("linksyn")


@dataclass
class NearDupPass:
    """One run of the global pass (see the module docstring)."""

    dataset: str
    """The sink's dataset folder (local path or fsspec URL)."""
    out: str
    """Where the deduplicated dataset goes (a new folder)."""
    work: str
    """Signatures, buckets, cluster files and datatrove's logs (local path or fsspec URL; resumable)."""
    fmt: Format
    """Which of the dataset's formats to read and write."""
    tasks: int
    """Parallel tasks of the signature and filter steps (the LSH bands set the bucket step's)."""
    workers: int
    """Processes running tasks at once on this machine."""
    shingle_words: int = 3
    threshold: float = 0.8
    num_perm: int = 128
    dataset_name: str = "linksyn-synthetic-qa"

    @classmethod
    def from_sink(cls, cfg: SinkConfig, dataset: str, out: str, work: str | None, fmt: Format | None,
                  tasks: int, workers: int) -> "NearDupPass":
        """With the sink section's settings (shingles, threshold, permutations, name)."""
        found = dataset_formats(dataset)
        if not found:
            raise FileNotFoundError(f"no dataset shards (data/jsonl/*.jsonl or data/parquet/*.parquet) under {dataset}")
        if fmt is None:
            fmt = "parquet" if "parquet" in found else found[0]
        elif fmt not in found:
            raise FileNotFoundError(f"no {fmt} shards under {dataset}/data/{fmt} (found: {', '.join(found)})")
        return cls(dataset=dataset, out=out, work=work or out.rstrip("/") + "/.near-dups-work", fmt=fmt,
                   tasks=tasks, workers=workers, shingle_words=cfg.shingle_words,
                   threshold=cfg.near_dup_threshold, num_perm=cfg.minhash_perm, dataset_name=cfg.dataset_name)

    def minhash_config(self) -> Any:
        from datatrove.pipeline.dedup.minhash import MinhashConfig
        from datatrove.utils.hashing import HashConfig
        from datatrove.utils.text import TextNormConfig

        bands, rows = lsh_params(self.threshold, self.num_perm)
        off = TextNormConfig(lowercase=False, norm_whitespace=False, remove_punctuation=False,
                             norm_unicode_diacritics=False, norm_numbers=False)
        return MinhashConfig(n_grams=self.shingle_words, num_buckets=bands, hashes_per_bucket=rows,
                             hash_config=HashConfig(precision=64, hash_fc="sha1"), norm_config=off)

    def _reader(self) -> Any:
        from datatrove.pipeline.readers import JsonlReader, ParquetReader

        folder = f"{self.dataset.rstrip('/')}/data/{self.fmt}"
        glob = f"*.{FORMAT_EXT[self.fmt]}"
        if self.fmt == "jsonl":
            return JsonlReader(folder, glob_pattern=glob, text_key=_TEXT, id_key=_ID, add_file_path=False,
                               compression=None)
        return ParquetReader(folder, glob_pattern=glob, text_key=_TEXT, id_key=_ID)

    def _writer(self, folder: str) -> Any:
        from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

        def row(_writer: Any, doc: Any) -> dict[str, Any]:
            return {name: doc.text if name == _TEXT else doc.id if name == _ID else doc.metadata.get(name)
                    for name in ROW_SCHEMA.names}

        name = "part-${rank}." + FORMAT_EXT[self.fmt]
        if self.fmt == "jsonl":
            return JsonlWriter(folder, output_filename=name, compression=None, adapter=row)
        return ParquetWriter(folder, output_filename=name, compression="zstd", adapter=row, schema=ROW_SCHEMA)

    def executors(self) -> Any:
        """The four datatrove steps, each depending on the one before; `.run()` on the last runs them all."""
        from datatrove.executor import LocalPipelineExecutor
        from datatrove.pipeline.dedup.minhash import (
            MinhashDedupBuckets,
            MinhashDedupCluster,
            MinhashDedupFilter,
            MinhashDedupSignature,
        )

        config = self.minhash_config()
        work = self.work.rstrip("/")
        common = {"workers": self.workers, "start_method": "spawn"}
        signatures = LocalPipelineExecutor(
            [self._reader(), MinhashDedupSignature(f"{work}/signatures", config=config,
                                                   language=_word_tokenizer())],
            tasks=self.tasks, logging_dir=f"{work}/logs/signatures", **common)
        buckets = LocalPipelineExecutor(
            [MinhashDedupBuckets(f"{work}/signatures", f"{work}/buckets", config=config)],
            tasks=config.num_buckets, logging_dir=f"{work}/logs/buckets", depends=signatures, **common)
        clusters = LocalPipelineExecutor(
            [MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=config)],
            tasks=1, logging_dir=f"{work}/logs/clusters", depends=buckets, **common)
        return LocalPipelineExecutor(
            [self._reader(),
             MinhashDedupFilter(f"{work}/remove", exclusion_writer=self._writer(f"{work}/removed")),
             self._writer(f"{self.out.rstrip('/')}/data/{self.fmt}")],
            tasks=self.tasks, logging_dir=f"{work}/logs/filter", depends=clusters, **common)

    def run(self) -> "NearDupReport":
        self.executors().run()
        kept = DatasetTotals()
        for columns in read_columns(f"{self.out.rstrip('/')}/data/{self.fmt}", self.fmt):
            kept.add_columns(columns)
        removed = sum(len(c["id"]) for c in read_columns(f"{self.work.rstrip('/')}/removed", self.fmt))
        kept.dropped["near_duplicate_global"] = removed
        kept.shards = len(list_shards(f"{self.out.rstrip('/')}/data/{self.fmt}", self.fmt))
        fs, root = fsspec.core.url_to_fs(self.out)
        fs.makedirs(root, exist_ok=True)
        with fs.open(f"{root.rstrip('/')}/README.md", "wb") as fh:
            fh.write(render_card(kept, [self.fmt], self.dataset_name).encode("utf-8"))
        return NearDupReport(kept=kept.records, removed=removed, fmt=self.fmt, out=self.out)


@dataclass
class NearDupReport:
    kept: int
    removed: int
    fmt: str
    out: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def dataset_formats(dataset: str) -> list[str]:
    """The formats a dataset folder has shards of."""
    return [fmt for fmt in ("parquet", "jsonl") if list_shards(f"{dataset.rstrip('/')}/data/{fmt}", fmt)]


def list_shards(folder: str, fmt: str) -> list[str]:
    fs, root = fsspec.core.url_to_fs(folder)
    if not fs.exists(root):
        return []
    return sorted(fs.glob(f"{root.rstrip('/')}/*.{FORMAT_EXT[fmt]}"))


def read_columns(folder: str, fmt: str) -> Iterator[dict[str, list[Any]]]:
    """The rows of every shard under `folder`, as dataset columns, a shard at a time."""
    fs, _ = fsspec.core.url_to_fs(folder)
    for path in list_shards(folder, fmt):
        with fs.open(path, "rb") as fh:
            if fmt == "parquet":
                yield pq.read_table(fh).to_pydict()
            else:
                rows = [orjson.loads(line) for line in fh.read().splitlines() if line.strip()]
                yield {name: [r.get(name) for r in rows] for name in ROW_SCHEMA.names}


def default_tasks() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))

