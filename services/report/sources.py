"""What a report is made from, found and read from files: a run's report.json, the graph snapshot store, the dataset
folder (card, shards, the sink's manifest), probe results. Either a `linksyn run` output folder, or what a cluster
leaves (the dataset folder and the graph store, local or at any fsspec URL); missing parts are noted, never invented.

Reading is bounded: the dataset's figures come from its partitions' manifests when the sink's state folder is found
(else from the rows' columns), and rows are read whole only for the sample shown, from the shards holding them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import fsspec
import pyarrow as pa
from linksyn.common.dataset import CARD, MANIFEST, STATE_DIR, DatasetTotals, read_manifests, shard_glob
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.common.snapshots.store import SnapshotStore

log = logging.getLogger(__name__)

READ_FORMATS = ("parquet", "jsonl")
"""Shard formats the report reads, preferred first (Parquet reads single columns)."""


class ReportSourceError(ValueError):
    """Nothing to report on at the given place, or a part that cannot be read (the message says which and why)."""


# ---- the dataset ------------------------------------------------------------------------------------------------


@dataclass
class DatasetFiles:
    """A dataset folder as the sink leaves it: its shards (one format), and its partitions' manifests if its state
    folder is found."""

    url: str
    fs: Any
    root: str
    shards: list[str]
    """Shard paths of the format read (Parquet if present, else JSONL), partition after partition, in order."""
    fmt: str
    manifests: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Partition -> its manifest (empty when the state folder was not found)."""
    shard_records: list[int | None] = field(default_factory=list)
    """Records of each shard, as the manifests list them (None where not known)."""
    has_card: bool = False

    def totals(self) -> DatasetTotals:
        """The manifests' totals; without them, the same figures counted from the rows (no drops known)."""
        if self.manifests:
            return DatasetTotals.of_manifests(self.manifests)
        totals = DatasetTotals(shards=len(self.shards))
        table = self.table(["id", "discipline", "difficulty", "mode", "lang", "models", "prompt_version",
                            "prompt_tokens", "completion_tokens"])
        if table.num_rows:
            totals.add_columns(table.to_pydict())
        return totals

    def _read(self, path: str, columns: Sequence[str] | None) -> pa.Table:
        with self.fs.open(path, "rb") as fh:
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                pf = pq.ParquetFile(fh)
                names = set(pf.schema_arrow.names)
                return pf.read(columns=[c for c in columns if c in names] if columns is not None else None)
            rows = [json.loads(line) for line in fh.read().decode("utf-8").splitlines() if line.strip()]
        table = pa.Table.from_pylist(rows)
        return table.select([c for c in columns if c in table.column_names]) if columns is not None else table

    def table(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The given columns (those that exist) of every shard, concatenated."""
        tables = [self._read(p, columns) for p in self.shards]
        if not tables:
            return pa.table({c: pa.array([], pa.string()) for c in (columns or [])})
        return pa.concat_tables(tables, promote_options="default")

    def _num_rows(self, number: int, path: str) -> int:
        known = self.shard_records[number] if number < len(self.shard_records) else None
        if known is not None:
            return known
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            with self.fs.open(path, "rb") as fh:
                return pq.ParquetFile(fh).metadata.num_rows
        return self._read(path, None).num_rows

    def rows(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Whole rows by position in the dataset (shard after shard); only the shards holding them are read."""
        wanted = sorted(set(indices))
        out: dict[int, dict[str, Any]] = {}
        start = 0
        for number, path in enumerate(self.shards):
            if not wanted:
                break
            end = start + self._num_rows(number, path)
            here = [i for i in wanted if start <= i < end]
            if here:
                table = self._read(path, None)
                for i, row in zip(here, table.take(pa.array([i - start for i in here], pa.int64())).to_pylist()):
                    out[i] = row
            wanted = [i for i in wanted if i >= end]
            start = end
        return [out[i] for i in indices if i in out]


def open_dataset(url: str, state_url: str | None = None) -> DatasetFiles:
    """The dataset at `url` (folder or fsspec URL); its partitions' manifests from `state_url` or
    `<url>/.sink-state`. ReportSourceError if it holds neither shards nor a manifest."""
    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    state_fs, state_root = fsspec.core.url_to_fs(state_url) if state_url else (fs, f"{root}/{STATE_DIR}")
    try:
        manifests = read_manifests(state_fs, state_root)
    except ValueError as e:
        raise ReportSourceError(str(e)) from None
    formats = {f for m in manifests.values() for f in m.get("formats", [])}
    shards: list[str] = []
    records: list[int | None] = []
    for fmt in READ_FORMATS:
        if fmt in formats:
            for m in manifests.values():
                for s in m["shards"]:
                    if fmt in s.get("files", {}):
                        shards.append(f"{root}/{s['files'][fmt]}")
                        records.append(int(s["records"]))
        elif not manifests:
            shards = sorted(fs.glob(f"{root}/{shard_glob(fmt)}"))
            records = [None] * len(shards)
        if shards:
            break
    else:
        fmt = READ_FORMATS[0]
    if not shards and not manifests:
        raise ReportSourceError(f"{url} holds no dataset shards (data/parquet, data/jsonl) and no sink manifest")
    return DatasetFiles(url, fs, root, shards, fmt, manifests, records, fs.exists(f"{root}/{CARD}"))


def is_dataset(url: str) -> bool:
    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    return fs.exists(f"{root}/data") or bool(fs.glob(f"{root}/{STATE_DIR}/partitions/*/{MANIFEST}"))


# ---- probes -----------------------------------------------------------------------------------------------------


@dataclass
class ProbeRun:
    """One probe of a model: accuracy per (discipline, difficulty grade) bucket."""

    name: str
    buckets: dict[tuple[str, int], tuple[int, float]]
    """(discipline, grade) -> (questions, accuracy)."""


def probe_from_report(report: dict[str, Any]) -> ProbeRun:
    """A ProbeReport as report.json holds it (linksyn.pipeline: run_id, checkpoint, buckets)."""
    name = report.get("checkpoint") or report.get("run_id") or "probe"
    return ProbeRun(name, {(b["discipline"], int(b["difficulty"])): (int(b["n"]), float(b["accuracy"]))
                           for b in report.get("buckets", [])})


def read_probe_file(path: str | Path) -> ProbeRun:
    """A `linksyn probe --json` file (buckets per benchmark, merged here) or one ProbeReport as JSON."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportSourceError(f"probe file {str(p)!r} cannot be read: {e}") from None
    if "buckets" in data:
        return probe_from_report(data)
    if not isinstance(data.get("results"), dict):
        raise ReportSourceError(f"probe file {str(p)!r} is neither `linksyn probe --json` output nor a ProbeReport")
    merged: dict[tuple[str, int], list[float]] = {}
    for bench in data["results"].values():
        for b in bench.get("buckets", []):
            acc = merged.setdefault((b["discipline"], int(b["difficulty"])), [0, 0.0])
            acc[0] += int(b["n"])
            acc[1] += int(b["n"]) * float(b["accuracy"])
    return ProbeRun(data.get("model") or p.stem, {k: (int(n), c / n if n else 0.0) for k, (n, c) in merged.items()})


# ---- everything -------------------------------------------------------------------------------------------------


@dataclass
class ReportSources:
    """What one report is made from; any part may be missing (`notes` says what was looked for)."""

    title: str
    run: dict[str, Any] | None = None
    """A run's report.json."""
    run_dir: str | None = None
    graph: GraphSnapshot | None = None
    graph_url: str | None = None
    dataset: DatasetFiles | None = None
    probes: list[ProbeRun] = field(default_factory=list)
    """Oldest first: the run's probe reports, then the files given."""
    notes: list[str] = field(default_factory=list)


def _load_graph(url: str) -> GraphSnapshot | None:
    store = SnapshotStore(url)
    version = store.latest_version()
    return None if version is None else store.load(version, verify=False)


def locate(
    path: str | Path,
    *,
    graph: str | None = None,
    dataset: str | None = None,
    dataset_state: str | None = None,
    probe_files: Sequence[str | Path] = (),
) -> ReportSources:
    """Find the parts of a report at `path`: a `linksyn run` output folder (report.json, graph/, dataset/), a
    dataset folder, a graph snapshot store, or a folder holding dataset/ and graph/ (a cluster's volumes). `graph`,
    `dataset` (folders or fsspec URLs) and `dataset_state` (the sink's state_dir, when not inside the dataset)
    override what is found. ReportSourceError when there is nothing to report on."""
    where = str(path)
    src = ReportSources(title=Path(where).resolve().name if "://" not in where else where)
    fs, root = fsspec.core.url_to_fs(where)
    root = root.rstrip("/") or "/"
    if not fs.exists(root):
        raise ReportSourceError(f"{where} does not exist")
    if fs.exists(f"{root}/report.json"):
        try:
            src.run = json.loads(fs.cat_file(f"{root}/report.json").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ReportSourceError(f"{where}/report.json is not valid JSON: {e}") from None
        src.run_dir = where
    if dataset is None:
        if is_dataset(where):
            dataset = where
        elif fs.exists(f"{root}/dataset"):
            dataset = f"{where.rstrip('/')}/dataset"
    if graph is None:
        if SnapshotStore(where).latest_version() is not None:
            graph = where
        elif fs.exists(f"{root}/graph"):
            graph = f"{where.rstrip('/')}/graph"
    if graph is not None:
        src.graph_url = graph
        try:
            src.graph = _load_graph(graph)
        except (OSError, ValueError) as e:
            raise ReportSourceError(f"graph store {graph}: {e}") from None
        if src.graph is None:
            src.notes.append(f"the graph store {graph} holds no complete snapshot")
    else:
        src.notes.append("no graph snapshot store given or found: graph, coverage and seed lineage are not shown")
    if dataset is not None:
        src.dataset = open_dataset(dataset, dataset_state)
    else:
        src.notes.append("no dataset folder given or found: dataset shares and sample QA are not shown")
    if src.run is None and src.graph is None and src.dataset is None:
        raise ReportSourceError(
            f"{where} holds no run (report.json), dataset (data/ or .sink-state/) or graph snapshot store; pass "
            "--dataset and --graph for a cluster's outputs"
        )
    if src.run is not None:
        src.probes += [probe_from_report(r) for r in src.run.get("probes", [])]
    src.probes += [read_probe_file(p) for p in probe_files]
    return src
