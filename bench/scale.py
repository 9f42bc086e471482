"""The sink at the papers' scale, simulated: `.venv/bin/python bench/scale.py` (add `--quick` for a smoke run).

A synthetic stream of SynthQA (tests/tooling/synthetic_qa.py: Zipf vocabulary, planted exact duplicates, near
duplicates with their exact Jaccard similarity, replays), keyed by the synth-qa contract and cut into partitions as
Kafka would (murmur2 of the key), goes through the sink:

1. Sweep: one replica holding every partition, then two replica processes each holding half of them, running at
   once, each through the whole stream (up to 10M records), the sink stage fed its partitions' records in stream
   order in batches of 500 (the consumer loop's work without the broker: the bus is measured in step 4).
   At each size (checkpoints of one run): records/s of the sink (its `process` calls, decontamination on against
   the eval sets in ../shared/data when present), resident memory (VmRSS, its anonymous and file-backed parts),
   disk used by the dataset and the state. Then the restart: every partition loaded again with the local indexes
   (a restart) and without them (a replica on an empty volume: indexes rebuilt from the state chunks). Exact
   duplicates kept (must be 0) counted over every partition.
2. Near duplicates at one size: recall and precision, against the planted pairs' exact Jaccard similarity, of
   (a) a single in-memory index over the whole stream (one LSH holding every record: the baseline),
   (b) the stream as sharded (each partition's window only),
   (c) the stream followed by the global pass (`linksyn near-dups`, datatrove) over its dataset.
   A planted pair (similarity >= threshold) is caught when the final dataset does not hold both; a removal is right
   when the removed record has similarity >= threshold with a record the final dataset holds (exact Jaccard of
   3-word shingles, computed for a sample of removals).
3. Bytes per record on each topic (seeds, seed-kps, paths with full seed text and with seed ids only, synth-qa),
   as record batches with kafka-python's encoder, per codec and batch size: what brokers store and send.
4. The same sink on the real Kafka protocol (a Tansu broker, tests/tooling/tansu.py): the stream's first records
   produced (zstd), then consumed by one replica and by two replica processes in one consumer group
   (`ConsumerLoop` + `KafkaBus` + `SinkStage`, as `linksyn serve sink` runs them): records/s end to end.

Writes its working files under --work (default: a temporary folder, removed at the end unless --keep).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SHARED = Path(os.environ.get("LINKSYN_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

from report import Aim, Figure, add_json_option, write_json  # noqa: E402

TOPIC = "linksyn.synth-qa"
KINDS = {"base": 0, "exact": 1, "near": 2, "replay": 3}
BATCH = 500


# ---- memory and disk ------------------------------------------------------------------------------------------

def memory_mb() -> dict[str, float]:
    """VmRSS (with its anonymous and file-backed parts) and VmHWM of this process, MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(line.split()[1]) / 1024
    return out


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20 if path.exists() else 0.0


# ---- 0. the stream, written once per partition -----------------------------------------------------------------

def stream_dir(work: Path, n: int, partitions: int) -> Path:
    return work / f"stream-{n}-p{partitions}"


def write_stream(work: Path, n: int, partitions: int) -> Path:
    """The first n records of SyntheticQA(seed 0), one file per partition (length-prefixed key and value, with the
    record's index in the stream), and the truth about each record (numpy arrays). Reused when present."""
    from linksyn.common.bus.base import murmur2_partition
    from linksyn.common.ids import id64, question_key

    from tests.tooling.synthetic_qa import SyntheticQA

    out = stream_dir(work, n, partitions)
    if (out / "truth.npz").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    files = [open(out / f"p{p:03d}.bin", "wb") for p in range(partitions)]
    kinds = np.zeros(n, np.uint8)
    sources = np.zeros(n, np.int64)
    jaccard = np.zeros(n, np.float32)
    part = np.zeros(n, np.uint16)
    ids = np.zeros(n, np.uint64)
    t0 = time.perf_counter()
    for qa, planted in SyntheticQA(n, seed=0).records():
        i = planted.index
        key = question_key(qa.question)
        value = qa.SerializeToString()
        p = murmur2_partition(key, partitions)
        files[p].write(struct.pack("<qHI", i, len(key), len(value)) + key + value)
        kinds[i], sources[i], jaccard[i], part[i], ids[i] = KINDS[planted.kind], planted.source, planted.jaccard, p, id64(qa.id)
        if (i + 1) % 1_000_000 == 0:
            print(f"  stream: {i + 1:,} records written ({time.perf_counter() - t0:.0f} s)", flush=True)
    for f in files:
        f.close()
    np.savez(out / "truth.npz", kinds=kinds, sources=sources, jaccard=jaccard, partition=part, ids=ids)
    return out


def read_partition(path: Path) -> Iterator[tuple[int, bytes, bytes]]:
    head = struct.calcsize("<qHI")
    with open(path, "rb") as fh:
        while True:
            h = fh.read(head)
            if not h:
                return
            i, kl, vl = struct.unpack("<qHI", h)
            key = fh.read(kl)
            yield i, key, fh.read(vl)


def merged(stream: Path, partitions: list[int], limit: int) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(stream index, partition, key, value) of the given partitions' records, in stream order, below `limit`."""
    def tagged(p: int) -> Iterator[tuple[int, int, bytes, bytes]]:
        for i, k, v in read_partition(stream / f"p{p:03d}.bin"):
            if i >= limit:
                return
            yield i, p, k, v

    return heapq.merge(*(tagged(p) for p in partitions))


# ---- 1. one sink replica (a worker process) ---------------------------------------------------------------------

def eval_sets() -> list[Any]:
    from linksyn.sink.config import EvalSetConfig

    ev = SHARED / "eval"
    if (ev / "mmlu" / "test").is_dir():
        return [EvalSetConfig(kind="mmlu", path=str(ev / "mmlu" / "test")),
                EvalSetConfig(kind="cmmlu", path=str(ev / "cmmlu" / "data" / "test")),
                EvalSetConfig(kind="gsm8k", path=str(ev / "gsm8k" / "test.jsonl"))]
    fx = REPO / "tests" / "sink" / "fixtures"
    return [EvalSetConfig(kind="mmlu", path=str(fx / "mmlu_test")), EvalSetConfig(kind="gsm8k", path=str(fx / "gsm8k_test.jsonl"))]


def sink_config(dataset: Path, index: Path, formats: list[str], flush_interval_s: float = 30.0) -> Any:
    from linksyn.sink.config import SinkConfig

    return SinkConfig(output_dir=str(dataset), index_dir=str(index), eval_sets=eval_sets(), formats=formats,
                      flush_interval_s=flush_interval_s)


def worker_sink(a: argparse.Namespace) -> None:
    """Feed this replica's partitions through a SinkStage; report per checkpoint; then time restarts."""
    from linksyn.common.bus.base import Message, TopicPartition
    from linksyn.sink.stage import SinkStage

    stream = Path(a.stream)
    mine = [p for p in range(a.partitions) if p % a.replicas == a.replica]
    out = Path(a.out)
    dataset, index = out / "dataset", out / f"index-{a.replica}"
    cfg = sink_config(dataset, index, a.formats.split(","))
    t0 = time.perf_counter()
    stage = SinkStage(cfg, TOPIC, name=f"bench-{a.replica}")
    setup_s = time.perf_counter() - t0
    checkpoints = sorted(int(x) for x in a.checkpoints.split(","))
    report: dict[str, Any] = {"replica": a.replica, "partitions": mine, "setup_s": setup_s, "checkpoints": []}
    busy = cpu = 0.0
    done = 0
    batch: list[Message] = []
    offsets: Counter = Counter()
    started = time.perf_counter()

    def run(batch: list[Message]) -> None:
        nonlocal busy, cpu
        w, c = time.perf_counter(), time.process_time()
        stage.process(batch)
        busy += time.perf_counter() - w
        cpu += time.process_time() - c

    next_cp = 0
    for i, p, key, value in merged(stream, mine, checkpoints[-1]):
        while next_cp < len(checkpoints) and i >= checkpoints[next_cp]:
            if batch:
                run(batch)
                batch = []
            report["checkpoints"].append(dict(size=checkpoints[next_cp], records=done, busy_s=busy, cpu_s=cpu,
                                              wall_s=time.perf_counter() - started, **memory_mb()))
            next_cp += 1
        batch.append(Message(TOPIC, p, offsets[p], key, value))
        offsets[p] += 1
        done += 1
        if len(batch) == BATCH:
            run(batch)
            batch = []
    if batch:
        run(batch)
    w, c = time.perf_counter(), time.process_time()
    stage.close()
    busy += time.perf_counter() - w
    cpu += time.process_time() - c
    while next_cp < len(checkpoints):
        report["checkpoints"].append(dict(size=checkpoints[next_cp], records=done, busy_s=busy, cpu_s=cpu,
                                          wall_s=time.perf_counter() - started, **memory_mb()))
        next_cp += 1
    report["kept"] = stage.dataset_totals.records
    report["dropped"] = dict(stage.dataset_totals.dropped)
    report["replays"] = stage.replays
    report["index_mb"] = disk_mb(index)
    # Restarts with this replica's full state: a new stage loads every partition (the lazy restore a first record
    # would trigger), first with the local indexes (a restart), then without (an empty volume: rebuilt from chunks).
    for label in ("restart", "rebuild"):
        if label == "rebuild":
            shutil.rmtree(index)
        w = time.perf_counter()
        again = SinkStage(cfg, TOPIC, name=f"bench-{a.replica}-{label}")
        report[f"{label}_start_s"] = time.perf_counter() - w  # eval-set index, kernels, state check
        w = time.perf_counter()
        for p in mine:
            again.partition(TopicPartition(TOPIC, p))
        report[f"{label}_load_s"] = time.perf_counter() - w  # every partition: index caught up, window refilled
        again.close()
    report["final_memory"] = memory_mb()
    Path(a.result).write_text(json.dumps(report))


def run_replicas(a: argparse.Namespace, stream: Path, replicas: int, checkpoints: list[int], out: Path,
                 formats: str = "parquet,jsonl") -> list[dict[str, Any]]:
    """`replicas` worker processes at once, each with its share of the partitions."""
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for k in range(replicas):
        result = out / f"replica-{k}.json"
        cmd = [sys.executable, __file__, "--worker", "sink", "--stream", str(stream), "--partitions",
               str(a.partitions), "--replicas", str(replicas), "--replica", str(k), "--out", str(out), "--checkpoints",
               ",".join(map(str, checkpoints)), "--result", str(result), "--formats", formats]
        procs.append((subprocess.Popen(cmd), result))
    reports = []
    for proc, result in procs:
        if proc.wait() != 0:
            raise RuntimeError(f"sink worker failed with exit status {proc.returncode}")
        reports.append(json.loads(result.read_text()))
    return reports


def exact_leaks(dataset: Path) -> tuple[int, int]:
    """(kept records, kept records whose normalised question another kept record has) over every partition."""
    from linksyn.sink.screen import KEPT
    from linksyn.sink.store import DatasetStore

    store = DatasetStore(str(dataset))
    kept = []
    for p, m in store.manifests().items():
        for name in m["chunks"]:
            c = store.read_chunk(p, name)
            kept.append(c["qhash"][c["outcome"] == KEPT])
    q = np.concatenate(kept) if kept else np.zeros(0, np.uint64)
    return len(q), len(q) - len(np.unique(q))


def sweep(a: argparse.Namespace, stream: Path, figures: list[Figure], notes: list[str]) -> dict[int, Any]:
    sizes = a.sizes
    results: dict[int, Any] = {}
    for replicas in a.replica_counts:
        out = Path(a.work) / f"sweep-{replicas}"
        shutil.rmtree(out, ignore_errors=True)
        print(f"== sweep: {replicas} replica(s), sizes {', '.join(f'{s:,}' for s in sizes)} ==", flush=True)
        reports = run_replicas(a, stream, replicas, sizes, out)
        kept, leaks = exact_leaks(out / "dataset")
        rows = []
        prev = {k: dict(size=0, records=0, busy_s=0.0, cpu_s=0.0) for k in range(replicas)}
        for j, size in enumerate(sizes):
            cps = [r["checkpoints"][j] for r in reports]
            seg_records = sum(c["records"] - prev[k]["records"] for k, c in enumerate(cps))
            seg_busy = max(c["busy_s"] - prev[k]["busy_s"] for k, c in enumerate(cps))
            rate = seg_records / seg_busy if seg_busy else float("nan")
            per_replica = [(c["records"] - prev[k]["records"]) / max(1e-9, c["busy_s"] - prev[k]["busy_s"])
                           for k, c in enumerate(cps)]
            cpu_us = sum(c["cpu_s"] - prev[k]["cpu_s"] for k, c in enumerate(cps)) / max(1, seg_records) * 1e6
            rows.append(dict(size=size, rate=rate, per_replica=per_replica, cpu_us=cpu_us,
                             rss=max(c["VmRSS"] for c in cps), anon=max(c["RssAnon"] for c in cps),
                             file=max(c["RssFile"] for c in cps), hwm=max(c["VmHWM"] for c in cps)))
            prev = {k: c for k, c in enumerate(cps)}
        results[replicas] = dict(rows=rows, reports=reports, kept=kept, leaks=leaks,
                                 dataset_mb=disk_mb(out / "dataset"), index_mb=sum(r["index_mb"] for r in reports))
        print(f"{'records':>12} {'records/s':>10} {'per replica':>22} {'CPU us/rec':>10} {'RSS MB':>8} {'anon':>7} "
              f"{'file':>7} {'peak':>7}   ({replicas} replica(s))")
        for r in rows:
            print(f"{r['size']:>12,} {r['rate']:>10,.0f} {' / '.join(f'{x:,.0f}' for x in r['per_replica']):>22} "
                  f"{r['cpu_us']:>10.1f} {r['rss']:>8.0f} {r['anon']:>7.0f} {r['file']:>7.0f} {r['hwm']:>7.0f}")
        restart = max(r["restart_load_s"] for r in reports)
        rebuild = max(r["rebuild_load_s"] for r in reports)
        start = max(r["restart_start_s"] for r in reports)
        print(f"  kept {kept:,}, exact duplicates kept {leaks}; dataset {results[replicas]['dataset_mb']:,.0f} MB, "
              f"indexes {results[replicas]['index_mb']:,.0f} MB; restart with full state: start {start:.1f} s "
              f"(eval-set index, kernels) + partitions loaded {restart:.2f} s; with the indexes rebuilt from the "
              f"chunks {rebuild:.2f} s", flush=True)
        results[replicas].update(restart=restart, rebuild=rebuild, start=start)
        if not a.keep and replicas != a.replica_counts[0]:
            shutil.rmtree(out, ignore_errors=True)
    one = results[a.replica_counts[0]]
    big = sizes[-1]
    ref = min(sizes, key=lambda s: abs(s - 1_000_000)) if len(sizes) > 1 else sizes[0]
    row = {r["size"]: r for r in one["rows"]}
    aim_size = big >= 10_000_000
    figures.append(Figure(f"sink records/s per replica at {big:,} records (decontamination on)", row[big]["rate"],
                          "records/s", aim=Aim(">=", 10_000) if aim_size else None,
                          note=f"over the last segment ({sizes[-2] if len(sizes) > 1 else 0:,}..{big:,}); "
                               f"{row[big]['cpu_us']:.0f} us CPU a record"))
    figures.append(Figure(f"sink RSS at {big:,} records", row[big]["rss"], "MB", f"RSS at {ref:,}", row[ref]["rss"],
                          aim=Aim("<=", 2.0, on="ratio") if aim_size else None,
                          note=f"anonymous {row[big]['anon']:.0f} MB, file-backed {row[big]['file']:.0f} MB"))
    for r in one["rows"]:
        figures.append(Figure(f"sink at {r['size']:,} records: records/s, 1 replica", r["rate"], "records/s",
                              note=f"RSS {r['rss']:.0f} MB (peak {r['hwm']:.0f}); {r['cpu_us']:.0f} us CPU a record"))
    if len(a.replica_counts) > 1:
        two = results[a.replica_counts[1]]
        row2 = {r["size"]: r for r in two["rows"]}
        figures.append(Figure(f"{a.replica_counts[1]} replicas vs 1 at {big:,} records, records/s", row2[big]["rate"],
                              "records/s", "1 replica", row[big]["rate"],
                              aim=Aim(">=", 1.7, on="ratio") if aim_size else None,
                              note="processes at once, each with half the partitions; per replica "
                                   + " / ".join(f"{x:,.0f}" for x in row2[big]["per_replica"])))
    for replicas, res in results.items():
        figures.append(Figure(f"exact duplicates kept, {replicas} replica(s), {big:,} records", res["leaks"],
                              "records", aim=Aim("<=", 0), note=f"of {res['kept']:,} kept"))
        figures.append(Figure(f"restart with full state, {replicas} replica(s) ({big:,} records): partitions loaded",
                              res["restart"], "s",
                              note=f"plus {res['start']:.1f} s to start (eval-set index, kernels); with the indexes "
                                   f"rebuilt from the chunks (an empty volume) {res['rebuild']:.1f} s"))
    notes.append(f"sweep: {a.partitions} partitions; batches of {BATCH}; records/s = records / time in "
                 "SinkStage.process (two replicas: the slower one's), per segment between checkpoints; dataset "
                 f"{one['dataset_mb']:,.0f} MB (parquet + jsonl), indexes {one['index_mb']:,.0f} MB at {big:,} records")
    return results


# ---- 2. near duplicates: recall and precision --------------------------------------------------------------------

def near_dup_quality(a: argparse.Namespace, stream: Path, figures: list[Figure], notes: list[str]) -> None:
    from linksyn.common.ids import id64
    from linksyn.common.text import fold_text
    from linksyn.sink.config import SinkConfig
    from linksyn.sink.dedup import MinHasher, NearDupWindow
    from linksyn.sink.near_dups import NearDupPass, read_columns
    from linksyn.sink.screen import KEPT, Featurizer
    from linksyn.sink.store import DatasetStore
    from linksyn.v1 import records_pb2

    from tests.tooling.synthetic_qa import SyntheticQA, shingle_jaccard

    n = a.recall_records
    t = SinkConfig().near_dup_threshold
    truth = np.load(stream / "truth.npz")
    kinds, sources, jac, ids = (truth["kinds"][:n], truth["sources"][:n], truth["jaccard"][:n], truth["ids"][:n])
    print(f"== near duplicates on the first {n:,} records (threshold {t}) ==", flush=True)
    out = Path(a.work) / "recall"
    shutil.rmtree(out, ignore_errors=True)
    run_replicas(a, stream, 1, [n], out, formats="jsonl")
    store = DatasetStore(str(out / "dataset"))
    stream_kept: set[int] = set()
    for p, m in store.manifests().items():
        for name in m["chunks"]:
            c = store.read_chunk(p, name)
            stream_kept.update(c["ids"][c["outcome"] == KEPT].tolist())

    # (a) one in-memory index over the whole stream, in stream order: exact duplicates by question, near ones by an
    # LSH window as large as the stream (it forgets nothing).
    questions: list[str] = []
    single_kept: set[int] = set()
    seen_q: set[int] = set()
    seen_ids: set[int] = set()
    feat = Featurizer(MinHasher(128, 3), t)
    window = NearDupWindow(2 * n + 2, t, 128)
    batch: list[records_pb2.SynthQA] = []
    t0 = time.perf_counter()

    def decide(batch: list[records_pb2.SynthQA]) -> None:
        from linksyn.common.ids import question_hash

        folded = [fold_text(q.question) for q in batch]
        f = feat.features(batch, folded, [question_hash(q.question) for q in batch], [fold_text(q.answer) for q in batch])
        todo = np.zeros(len(batch), bool)
        for j, q in enumerate(batch):
            rid, qh = int(f.ids[j]), int(f.qhash[j])
            if rid in seen_ids or qh in seen_q:
                seen_ids.add(rid)
                continue
            seen_ids.add(rid)
            seen_q.add(qh)
            todo[j] = True
        near = window.screen(f.keys, f.short, todo)
        single_kept.update(int(f.ids[j]) for j in np.flatnonzero(todo & ~near))

    for qa, _ in SyntheticQA(n, seed=0).records():
        questions.append(qa.question)
        batch.append(qa)
        if len(batch) == BATCH:
            decide(batch)
            batch = []
    if batch:
        decide(batch)
    single_s = time.perf_counter() - t0

    # (c) the global pass over the stream's dataset.
    t0 = time.perf_counter()
    cfg = SinkConfig(output_dir=str(out / "dataset"))
    report = NearDupPass.from_sink(cfg, str(out / "dataset"), str(out / "global"), None, "jsonl",
                                   tasks=a.global_tasks, workers=a.global_tasks).run()
    global_s = time.perf_counter() - t0
    system_kept = {id64(i) for c in read_columns(str(out / "global" / "data" / "jsonl"), "jsonl") for i in c["id"]}

    positives = np.flatnonzero((kinds == KINDS["near"]) & (jac >= t))
    variants: dict[int, list[int]] = {}
    for i in np.flatnonzero(kinds == KINDS["near"]).tolist():
        variants.setdefault(int(sources[i]), []).append(i)
    rng = np.random.default_rng(0)
    results = {}
    for label, kept in (("single in-memory index", single_kept), ("stream (partition windows)", stream_kept),
                        ("stream + global pass", system_kept)):
        caught = sum(1 for i in positives.tolist() if not (int(ids[i]) in kept and int(ids[sources[i]]) in kept))
        recall = caught / len(positives) if len(positives) else float("nan")
        # Removals judged by exact Jaccard to what the final dataset holds, for a sample of them.
        candidates = np.flatnonzero((kinds == KINDS["base"]) | (kinds == KINDS["near"])).tolist()
        removed = [i for i in candidates if int(ids[i]) not in kept]
        sample = rng.choice(removed, size=min(len(removed), 2000), replace=False).tolist() if removed else []
        right = 0
        for i in sample:
            base = int(sources[i]) if kinds[i] == KINDS["near"] else i
            others = [j for j in [base, *variants.get(base, [])] if j != i and int(ids[j]) in kept]
            if any(shingle_jaccard(questions[i], questions[j]) >= t for j in others):
                right += 1
        precision = right / len(sample) if len(sample) else float("nan")
        results[label] = (recall, precision, len(removed))
        print(f"  {label:28s} recall {recall:.3f} ({caught:,} of {len(positives):,} planted pairs with J >= {t}), "
              f"precision {precision:.3f} (sample of {len(sample):,} of {len(removed):,} near-duplicate removals)")
    print(f"  single index {single_s:.0f} s; global pass {global_s:.0f} s (datatrove, {a.global_tasks} tasks): "
          f"kept {report.kept:,}, removed {report.removed:,}", flush=True)
    base_recall = results["single in-memory index"][0]
    for label, (recall, precision, removed) in results.items():
        if label == "single in-memory index":
            figures.append(Figure(f"near-dup recall, {label} ({n:,} records)", recall, "share",
                                  note=f"precision {precision:.3f} over {removed:,} removals"))
            continue
        figures.append(Figure(f"near-dup recall, {label} ({n:,} records)", recall, "share",
                              "single in-memory index", base_recall,
                              aim=Aim(">=", 0.95, on="ratio") if label == "stream + global pass" else None,
                              note=f"precision {precision:.3f} over {removed:,} removals (baseline "
                                   f"{results['single in-memory index'][1]:.3f})"))
    notes.append(f"near duplicates: {len(positives):,} planted pairs with exact Jaccard >= {t} among {n:,} records; "
                 f"{a.partitions} partitions, window {SinkConfig().near_dup_window:,} kept records a partition; "
                 f"global pass: datatrove {report.kept:,} kept / {report.removed:,} removed in {global_s:.0f} s")
    if not a.keep:
        shutil.rmtree(out, ignore_errors=True)


# ---- 3. bytes per record on each topic -------------------------------------------------------------------------

def topic_records(n: int) -> dict[str, list[tuple[bytes, bytes]]]:
    """(key, value) of realistic records of each topic, from real seeds when ../shared/data has them."""
    from linksyn.common.ids import question_key
    from linksyn.common.seeds import SeedReader
    from linksyn.v1 import records_pb2

    from tests.tooling.synthetic_qa import SyntheticQA

    sources = [p for p in (SHARED / "seeds").glob("*") if p.exists()] if (SHARED / "seeds").is_dir() else []
    seeds = []
    for s in SeedReader(sources or [REPO / "examples" / "seeds.jsonl"]):
        seeds.append(s)
        if len(seeds) >= n:
            break
    while len(seeds) < n:
        seeds += seeds[: n - len(seeds)]
    kps = ["kinetic energy", "conservation of momentum", "linear equations", "photosynthesis", "supply and demand"]
    out: dict[str, list[tuple[bytes, bytes]]] = {"seeds": [], "seed-kps": [], "paths (full seed text)": [],
                                                  "paths (seed ids only)": [], "synth-qa": []}
    for i, s in enumerate(seeds):
        key = s.id.encode()
        out["seeds"].append((key, s.SerializeToString()))
        ann = records_pb2.AnnotatedSeed(seed=s, kps=kps[: 1 + i % 5], discipline="physics", subdiscipline="mechanics",
                                        difficulty=1 + i % 5, annotator="vllm:Qwen2.5-7B-Instruct")
        out["seed-kps"].append((key, ann.SerializeToString()))
    rng = np.random.default_rng(0)
    for i in range(n):
        group = [seeds[j] for j in rng.integers(0, len(seeds), 4).tolist()]  # each seed in about 4 paths
        full = records_pb2.WalkPath(id=f"{i:032x}", kps=kps[:3], graph_version=7, target_discipline="physics",
                                    target_difficulty=3,
                                    seeds=[records_pb2.PathSeed(id=s.id, question=s.question, answer=s.answer,
                                                                kps=kps[:2], discipline="physics", difficulty=3)
                                           for s in group])
        out["paths (full seed text)"].append((full.id.encode(), full.SerializeToString()))
        for ps in full.seeds:
            ps.question, ps.answer = "", ""
        out["paths (seed ids only)"].append((full.id.encode(), full.SerializeToString()))
    for qa, _ in SyntheticQA(n, seed=3).records():
        # Real synthesized QA are longer than the synthetic questions: the seeds' texts stand in for them.
        s = seeds[len(out["synth-qa"]) % len(seeds)]
        qa.question, qa.answer, qa.rationale = s.question, s.answer, s.answer
        out["synth-qa"].append((question_key(qa.question), qa.SerializeToString()))
    return out


def batch_bytes(records: list[tuple[bytes, bytes]], codec: int, batch_records: int) -> float:
    """Bytes a record in record batches of `batch_records` (kafka-python's encoder, as the producer sends them)."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    total = 0
    for start in range(0, len(records), batch_records):
        b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False, producer_id=-1,
                                      producer_epoch=-1, base_sequence=-1, batch_size=64 * 2**20)
        for off, (k, v) in enumerate(records[start : start + batch_records]):
            b.append(off, timestamp=0, key=k, value=v, headers=[])
        total += len(b.build())
    return total / len(records)


def topic_bytes(a: argparse.Namespace, figures: list[Figure], notes: list[str]) -> dict[str, Any]:
    from kafka.record.default_records import DefaultRecordBatchBuilder as B

    codecs = {"none": B.CODEC_NONE, "gzip": B.CODEC_GZIP, "lz4": B.CODEC_LZ4, "zstd": B.CODEC_ZSTD}
    records = topic_records(a.topic_records)
    print("== bytes per record on each topic (record batches, kafka-python's encoder) ==", flush=True)
    sizes = (1, 16, 1000)
    print(f"{'topic':24} {'codec':>6} " + " ".join(f"{f'batch {s}':>11}" for s in sizes))
    table: dict[str, Any] = {}
    for topic, recs in records.items():
        for name, codec in codecs.items():
            row = [batch_bytes(recs, codec, s) for s in sizes]
            table[f"{topic}/{name}"] = row
            print(f"{topic:24} {name:>6} " + " ".join(f"{x:>11,.0f}" for x in row))
    for topic in records:
        none, zstd = table[f"{topic}/none"][-1], table[f"{topic}/zstd"][-1]
        figures.append(Figure(f"bytes a record, {topic}, zstd batches of 1000", zstd, "bytes", "uncompressed", none,
                              note=f"lz4 {table[f'{topic}/lz4'][-1]:,.0f}; batches of 16 with zstd "
                                   f"{table[f'{topic}/zstd'][1]:,.0f}; single records {table[f'{topic}/zstd'][0]:,.0f}"))
    notes.append(f"bytes per record: {a.topic_records:,} records a topic; seeds from "
                 f"{'../shared/data/seeds' if (SHARED / 'seeds').is_dir() else 'examples/seeds.jsonl'}; a path holds "
                 "4 seeds; synth-qa records carry seed-length texts")
    return table


# ---- 4. on the real Kafka protocol ---------------------------------------------------------------------------

def worker_kafka(a: argparse.Namespace) -> None:
    """One `linksyn serve sink`-like replica: ConsumerLoop + KafkaBus + SinkStage until `expected` records are done
    by the group (the parent watches the dataset); reports when its own work ended."""
    from linksyn.common.bus.kafka import KafkaBus
    from linksyn.common.config import KafkaConfig, RuntimeConfig, TopicsConfig
    from linksyn.common.runtime.loop import ConsumerLoop
    from linksyn.sink.stage import SinkStage

    out = Path(a.out)
    cfg = sink_config(out / "dataset", out / f"index-{a.replica}", ["parquet", "jsonl"], flush_interval_s=1.0)
    kafka = KafkaConfig(bootstrap=a.bootstrap, session_timeout_ms=6000, heartbeat_interval_ms=1000,
                        max_poll_interval_ms=60000)
    bus = KafkaBus(kafka, client_id=f"bench-{a.replica}")
    stage = SinkStage(cfg, TOPIC, name=f"bench-kafka-{a.replica}")
    loop = ConsumerLoop(bus, stage, RuntimeConfig(batch_size=BATCH, max_in_flight=4 * BATCH, batch_wait_s=0.05),
                        TopicsConfig(synth_qa=TOPIC), a.group).start()
    Path(a.result).write_text(json.dumps({"ready": True}))
    stop = Path(a.out) / "stop"
    while not stop.exists():
        time.sleep(0.2)
    stats = loop.stats()
    loop.stop(timeout=120)
    bus.close()
    Path(a.result).write_text(json.dumps({"records_in": stats.get("records_in", 0), **memory_mb()}))


def kafka_mode(a: argparse.Namespace, stream: Path, figures: list[Figure], notes: list[str],
               sink_rates: dict[int, float]) -> None:
    from linksyn.common.bus.kafka import KafkaBus
    from linksyn.common.config import KafkaConfig

    from tests.tooling.tansu import TansuBroker

    n = a.kafka_records
    print(f"== the real Kafka protocol: {n:,} records through a Tansu broker ==", flush=True)
    with TansuBroker() as broker:
        bus = KafkaBus(KafkaConfig(bootstrap=broker.bootstrap, compression_type="zstd"), client_id="bench-producer")
        bus.ensure_topics({TOPIC: a.partitions, "linksyn.dead-letter": 1})
        t0 = time.perf_counter()
        for _, p, key, value in merged(stream, list(range(a.partitions)), n):
            bus.produce(TOPIC, value, key=key)
        bus.flush()
        produce_s = time.perf_counter() - t0
        print(f"  produced {n:,} in {produce_s:.0f} s ({n / produce_s:,.0f} records/s, zstd)", flush=True)
        rates = {}
        for replicas in a.replica_counts:
            out = Path(a.work) / f"kafka-{replicas}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            group = f"bench-sink-{replicas}"
            procs = []
            for k in range(replicas):
                result = out / f"replica-{k}.json"
                cmd = [sys.executable, __file__, "--worker", "kafka", "--bootstrap", broker.bootstrap, "--group", group,
                       "--replica", str(k), "--out", str(out), "--result", str(result)]
                procs.append((subprocess.Popen(cmd), result))
            while not all(r.exists() for _, r in procs):
                time.sleep(0.1)
            t0 = time.perf_counter()
            deadline = t0 + 3600
            first: tuple[float, int] | None = None  # the first commit: the group has joined and is working
            while time.perf_counter() < deadline:  # committed = decided durably (the sink commits after a flush)
                lag = sum(bus.group_lag(group, TOPIC).values())
                if first is None and lag < n:
                    first = (time.perf_counter(), lag)
                if lag == 0:
                    break
                time.sleep(0.25)
            end = time.perf_counter()
            (out / "stop").write_text("")
            for proc, _ in procs:
                proc.wait(300)
            assert first is not None
            rates[replicas] = first[1] / max(1e-9, end - first[0])
            print(f"  {replicas} replica(s): {n:,} records consumed, decided and committed in {end - t0:.1f} s "
                  f"(group joins included); {rates[replicas]:,.0f} records/s from the first commit to the last",
                  flush=True)
            if not a.keep:
                shutil.rmtree(out, ignore_errors=True)
        bus.close()
    for replicas, rate in rates.items():
        base = sink_rates.get(replicas)
        figures.append(Figure(f"sink on Kafka (Tansu), {replicas} replica(s), {n:,} records: records/s end to end",
                              rate, "records/s", "sink without a broker, same replicas" if base else None, base,
                              note="consume + decide + shards + commit; the broker and the replicas share the CPUs"))
    notes.append("Kafka: one Tansu broker (memory storage) on this machine; records produced with zstd before the "
                 "replicas start; a run ends when the group's lag is 0 and every record is decided durably")


# ---- main ---------------------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run of a few minutes)")
    ap.add_argument("--sizes", default=None, help="Checkpoints of the sweep (records), comma-separated "
                    "(default 100000,1000000,3000000,10000000; quick 20000,100000).")
    ap.add_argument("--replicas", default="1,2", help="Replica counts of the sweep and of the Kafka runs.")
    ap.add_argument("--partitions", type=int, default=12, help="Partitions of synth-qa (the default topics').")
    ap.add_argument("--recall-records", type=int, default=None, help="Records for the near-duplicate quality "
                    "(default 1000000; quick 50000).")
    ap.add_argument("--global-tasks", type=int, default=2, help="datatrove tasks (and processes) of the global pass.")
    ap.add_argument("--kafka-records", type=int, default=None, help="Records through the Tansu broker (default "
                    "1000000; quick 20000; 0 skips).")
    ap.add_argument("--topic-records", type=int, default=None, help="Records a topic for the bytes table "
                    "(default 20000; quick 2000).")
    ap.add_argument("--skip", default="", help="Parts to skip: sweep,recall,bytes,kafka.")
    ap.add_argument("--work", default=None, help="Working folder (default: a temporary one).")
    ap.add_argument("--keep", action="store_true", help="Keep the working folder.")
    add_json_option(ap)
    ap.add_argument("--worker", choices=["sink", "kafka"], help=argparse.SUPPRESS)
    for opt in ("--stream", "--out", "--result", "--checkpoints", "--formats", "--bootstrap", "--group"):
        ap.add_argument(opt, help=argparse.SUPPRESS)
    ap.add_argument("--replica", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker == "sink":
        a.replicas = int(a.replicas)
        worker_sink(a)
        return
    if a.worker == "kafka":
        worker_kafka(a)
        return

    a.sizes = [int(x) for x in (a.sizes or ("20000,100000" if a.quick else "100000,1000000,3000000,10000000"))
               .split(",") if x]
    a.replica_counts = [int(x) for x in a.replicas.split(",") if x]
    a.recall_records = a.recall_records or (50_000 if a.quick else 1_000_000)
    a.kafka_records = a.kafka_records if a.kafka_records is not None else (20_000 if a.quick else 1_000_000)
    a.topic_records = a.topic_records or (2_000 if a.quick else 20_000)
    skip = {x for x in a.skip.split(",") if x}
    temp = a.work is None
    a.work = a.work or tempfile.mkdtemp(prefix="linksyn-scale-")
    Path(a.work).mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    notes: list[str] = [f"load average at the start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
                        f"(the 2-replica figures need two idle cores)"]
    print(f"scale bench: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; work folder {a.work}", flush=True)
    try:
        n = max(a.sizes + [a.recall_records, a.kafka_records])
        t0 = time.perf_counter()
        stream = write_stream(Path(a.work), n, a.partitions)
        print(f"stream of {n:,} records ready ({time.perf_counter() - t0:.0f} s)", flush=True)
        sink_rates: dict[int, float] = {}
        if "sweep" not in skip:
            res = sweep(a, stream, figures, notes)
            for replicas, r in res.items():
                near = min(r["rows"], key=lambda row: abs(row["size"] - a.kafka_records))
                sink_rates[replicas] = near["rate"]
        if "recall" not in skip:
            near_dup_quality(a, stream, figures, notes)
        if "bytes" not in skip:
            topic_bytes(a, figures, notes)
        if "kafka" not in skip and a.kafka_records:
            kafka_mode(a, stream, figures, notes, sink_rates)
    finally:
        if temp and not a.keep:
            shutil.rmtree(a.work, ignore_errors=True)
    if a.json:
        write_json(a.json, figures, notes)


if __name__ == "__main__":
    main()
