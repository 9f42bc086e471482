"""Graph ingest benchmark: linksyn's vectorised KPGraph against the plain networkx way (GraphGen's), same run.

    nice -n 5 .venv/bin/python bench/graph.py          # 100K and 1M synthetic seeds, networkx on both, real seeds
    .venv/bin/python bench/graph.py --sizes 100000 --no-real --stream-batch 0 --stage-seeds 0     # quick look
    .venv/bin/python bench/graph.py --sizes 100000,1000000,10000000 --nx-sizes 100000,1000000    # with 10M seeds

Every measurement runs in its own subprocess, so peak memory (VmHWM) is that run's alone; "ingest MB" is the
peak minus the resident size after the input was generated (what the graph itself costs). Ratios to networkx
compare the same input at the same size, by CPU seconds, system time included (both are single-threaded; on a
shared machine wall time mostly measures the neighbours, so every line also shows the 1-minute load average when
it ended, and the system share of the CPU time: mostly first-touch page faults, whose cost on a VM varies with the
host). linksyn's ingest runs numba kernels: each linksyn worker compiles them, or loads them from numba's disk
cache, before its clock starts and shows that as "jit warm-up"; the first-ever compile (an empty cache) is
measured on its own at the start. Neither is in an ingest figure. Synthetic seeds: KP
popularity is Zipf(s) over a large vocabulary, 1 + Poisson(3) KPs a seed (mean ~4, at most 8), short unique
question/answer texts (--text-chars). Batches are `--batch` seeds (bulk) and 64 seeds (what the consumer loop
hands the stage with the default runtime.batch_size). The bulk lines start from SeedBatch columns (no protobuf);
the "graph stage" line runs AnnotatedSeed bytes through GraphStage.process (protobuf decode + validation +
ingest), and its decode share is measured on its own ("decode").

Real seeds: every seed file under $LINKSYN_SHARED_DATA/seeds (MMLU dev+val, GSM8K train, MATH), annotated
LLM-free with linksyn.extractor.keyphrase (MiniLM keyphrases, KPs put in canonical form by kp_canon; no embedding
merge of near-synonyms). The annotation is cached (--cache) since it is not what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from report import Aim, Figure, add_json_option, write_json  # noqa: E402


def sys_s() -> float:
    """System CPU seconds of this process so far (page faults, mostly): part of the CPU time, shown apart since on
    a VM first-touch faults cost a varying, host-dependent amount."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """Peak resident size of this process. VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a worker
    started by a parent that had loaded the embedding model would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- inputs ---------------------------------------------------------------------------------------------------


def synthetic(n: int, vocab: int, zipf_s: float, text_chars: int, seed: int = 0):
    """Columns of n synthetic annotated seeds (seed ids, KP indptr, KP texts, discipline, difficulty, q, a)."""
    rng = np.random.default_rng(seed)
    counts = np.minimum(1 + rng.poisson(3.0, n), 8)
    p = 1.0 / np.arange(1, vocab + 1) ** zipf_s
    kp = rng.choice(vocab, size=int(counts.sum()), p=p / p.sum())
    uniq, inv = np.unique(kp, return_inverse=True)
    names = [f"knowledge point {u}" for u in uniq.tolist()]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    discs = ["mathematics", "physics", "chemistry", "biology", "history", "law", "economics", "computer science"]
    filler = "lorem ipsum dolor sit amet " * (text_chars // 20 + 2)
    qlen = max(1, text_chars * 3 // 4)
    return dict(
        seed_ids=[f"seed-{i:09d}" for i in range(n)],
        kp_indptr=indptr,
        kps=[names[i] for i in inv.tolist()],
        discipline=[discs[i] for i in rng.integers(0, len(discs), n).tolist()],
        difficulty=rng.integers(0, 6, n).astype(np.int8),
        question=[f"Q{i} {filler[:qlen]}" for i in range(n)],
        answer=[f"A{i} {filler[: max(1, text_chars - qlen)]}" for i in range(n)],
    )


def synthetic_batches(n: int, batch: int, vocab: int, zipf_s: float, text_chars: int, seed: int = 0):
    """The same distribution as `synthetic`, made one batch at a time (SeedBatch objects), so that a 10M-seed run
    does not hold its whole input: what stays resident is the graph. KP k is named "knowledge point k"."""
    from linksyn.graph.build import SeedBatch

    p = 1.0 / np.arange(1, vocab + 1) ** zipf_s
    p /= p.sum()
    discs = ["mathematics", "physics", "chemistry", "biology", "history", "law", "economics", "computer science"]
    filler = "lorem ipsum dolor sit amet " * (text_chars // 20 + 2)
    qlen = max(1, text_chars * 3 // 4)
    for b, s in enumerate(range(0, n, batch)):
        rng = np.random.default_rng((seed, b))
        m = min(batch, n - s)
        counts = np.minimum(1 + rng.poisson(3.0, m), 8)
        indptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        kp = rng.choice(vocab, size=int(indptr[-1]), p=p)
        yield SeedBatch([f"seed-{i:09d}" for i in range(s, s + m)], indptr,
                        [f"knowledge point {k}" for k in kp.tolist()],
                        [discs[i] for i in rng.integers(0, len(discs), m).tolist()],
                        rng.integers(0, 6, m).astype(np.int8),
                        [f"Q{i} {filler[:qlen]}" for i in range(s, s + m)],
                        [f"A{i} {filler[: max(1, text_chars - qlen)]}" for i in range(s, s + m)])


def work_linksyn_streamed(args) -> dict:
    """`work_linksyn` with the input made batch by batch (`synthetic_batches`); only the ingest calls are timed."""
    from linksyn.graph.build import KPGraph, warm_up

    c = time.process_time()
    jit_s = warm_up()
    jit_cpu_s = time.process_time() - c
    base = rss_mb()
    g = KPGraph()
    ingest_s = ingest_cpu_s = 0.0
    sys0 = sys_s()
    for b in synthetic_batches(args.n, args.batch, args.vocab, args.zipf, args.text_chars):
        t, c = time.perf_counter(), time.process_time()
        g.ingest(b)
        ingest_s += time.perf_counter() - t
        ingest_cpu_s += time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    n_edges = g.n_edges  # merges what is pending: part of the ingest
    ingest_s += time.perf_counter() - t
    ingest_cpu_s += time.process_time() - c
    ingest_peak = peak_mb()
    t, c = time.perf_counter(), time.process_time()
    snap = g.to_snapshot(1)
    snapshot_s, snapshot_cpu_s = time.perf_counter() - t, time.process_time() - c
    return dict(seeds=g.n_seeds, kps=g.n_kps, edges=n_edges, ingest_s=ingest_s, ingest_cpu_s=ingest_cpu_s,
                snapshot_s=snapshot_s, snapshot_cpu_s=snapshot_cpu_s, jit_s=jit_s, jit_cpu_s=jit_cpu_s,
                ingest_sys_s=sys_s() - sys0, base_mb=base, ingest_peak_mb=ingest_peak, peak_mb=peak_mb(),
                pairs=int(snap.seed_kp_indptr[-1]), streamed=True)


def real_cache_path(args) -> Path:
    return Path(args.cache)


def real_seeds_dir() -> Path:
    return Path(os.environ.get("LINKSYN_SHARED_DATA", ROOT.parent / "shared" / "data")) / "seeds"


def annotate_real(args) -> Path | None:
    """Annotate the real seeds LLM-free, in chunks appended to the cache (resumable: a later run goes on where this
    one stopped). Stops after --annotate-budget-s; the bench then uses the seeds annotated so far and says so.
    Returns the cache file (JSON lines), None if the data is absent or nothing is annotated."""
    cache = real_cache_path(args)
    data = real_seeds_dir()
    if not data.is_dir():
        print(f"real seeds: {data} is absent; skipped (set LINKSYN_SHARED_DATA)")
        return None
    from linksyn.common.seeds.readers import SeedReader

    seeds = list(SeedReader([data]))
    if args.real_limit:
        seeds = seeds[: args.real_limit]
    progress = cache.with_suffix(".progress")
    done = int(progress.read_text()) if progress.exists() and cache.exists() else 0
    if done < len(seeds):
        from linksyn.common.kp_form import canonical_form
        from linksyn.common.taxonomy import load_taxonomy
        from linksyn.extractor.embedding import shared_embedder
        from linksyn.extractor.keyphrase import KeyphraseExtractor

        print(f"real seeds: annotating {len(seeds) - done} of {len(seeds)} seeds from {data} with the keyphrase "
              f"extractor (cache {cache}, budget {args.annotate_budget_s:.0f}s)...", flush=True)
        ex = KeyphraseExtractor(shared_embedder(), load_taxonomy())
        cache.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with open(cache, "a" if done else "w") as f:
            while done < len(seeds) and time.perf_counter() - t0 < args.annotate_budget_s:
                chunk = seeds[done : done + 256]
                for s, o in zip(chunk, ex.annotate(chunk)):
                    if o.annotation is None:
                        continue
                    kps = list(dict.fromkeys(k for k in (canonical_form(x) for x in o.annotation.kps) if k))
                    if kps:
                        f.write(json.dumps({"id": s.id, "kps": kps, "discipline": o.annotation.discipline,
                                            "difficulty": o.annotation.difficulty, "q": s.question,
                                            "a": s.answer}) + "\n")
                f.flush()
                done += len(chunk)
                progress.write_text(str(done))
                print(f"  {done}/{len(seeds)} annotated ({time.perf_counter() - t0:.0f}s)", flush=True)
    if done < len(seeds):
        print(f"real seeds: only {done} of {len(seeds)} seeds annotated within the budget; measuring those "
              "(run again to annotate more)")
    return cache if done else None


def real_columns(path: Path, copies: int):
    rows = [json.loads(line) for line in open(path)]
    ids, kps, counts, disc, diff, q, a = [], [], [], [], [], [], []
    for c in range(copies):  # copies: the same real KP structure repeated under new seed ids (scaling look)
        for r in rows:
            ids.append(r["id"] if c == 0 else f"{r['id']}#{c}")
            kps.extend(r["kps"])
            counts.append(len(r["kps"]))
            disc.append(r["discipline"])
            diff.append(r["difficulty"])
            q.append(r["q"])
            a.append(r["a"])
    indptr = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return dict(seed_ids=ids, kp_indptr=indptr, kps=kps, discipline=disc,
                difficulty=np.asarray(diff, dtype=np.int8), question=q, answer=a)


# ---- workers (one subprocess each) ----------------------------------------------------------------------------


def batches(cols, size: int):
    from linksyn.graph.build import SeedBatch

    n, ip = len(cols["seed_ids"]), cols["kp_indptr"]
    out = []
    for s in range(0, n, size):
        e = min(n, s + size)
        lo, hi = ip[s], ip[e]
        out.append(SeedBatch(cols["seed_ids"][s:e], ip[s : e + 1] - lo, cols["kps"][lo:hi], cols["discipline"][s:e],
                             cols["difficulty"][s:e], cols["question"][s:e], cols["answer"][s:e]))
    return out


def work_linksyn(cols, batch: int) -> dict:
    from linksyn.graph.build import KPGraph, warm_up

    bs = batches(cols, batch)
    c = time.process_time()
    jit_s = warm_up()  # compiles the numba kernels, or loads them from the disk cache: once per process
    jit_cpu_s = time.process_time() - c
    base = rss_mb()
    g = KPGraph()
    t, c, sys0 = time.perf_counter(), time.process_time(), sys_s()
    for b in bs:
        g.ingest(b)
    n_edges = g.n_edges  # merges what is pending: part of the ingest
    ingest_s, ingest_cpu_s, ingest_sys_s = time.perf_counter() - t, time.process_time() - c, sys_s() - sys0
    ingest_peak = peak_mb()
    t, c = time.perf_counter(), time.process_time()
    snap = g.to_snapshot(1)
    snapshot_s, snapshot_cpu_s = time.perf_counter() - t, time.process_time() - c
    return dict(seeds=g.n_seeds, kps=g.n_kps, edges=n_edges, ingest_s=ingest_s, ingest_cpu_s=ingest_cpu_s,
                snapshot_s=snapshot_s, snapshot_cpu_s=snapshot_cpu_s, jit_s=jit_s, jit_cpu_s=jit_cpu_s,
                ingest_sys_s=ingest_sys_s,
                base_mb=base, ingest_peak_mb=ingest_peak, peak_mb=peak_mb(), pairs=int(snap.seed_kp_indptr[-1]))


def work_networkx(cols) -> dict:
    """The plain way: one add_edge / weight += 1 per KP pair, node attributes and seed lists in Python."""
    import itertools

    import networkx as nx

    base = rss_mb()
    t, c, sys0 = time.perf_counter(), time.process_time(), sys_s()
    G = nx.Graph()
    seen: set[str] = set()
    ids, ip, kps = cols["seed_ids"], cols["kp_indptr"].tolist(), cols["kps"]
    disc, diff = cols["discipline"], cols["difficulty"].tolist()
    seed_text = {}
    for i, sid in enumerate(ids):
        if sid in seen:
            continue
        seen.add(sid)
        seed_text[sid] = (cols["question"][i], cols["answer"][i], disc[i], diff[i])
        ks = sorted(set(kps[ip[i] : ip[i + 1]]))
        for k in ks:
            if k not in G:
                G.add_node(k, popularity=0, seeds=[], hist=[0] * 6, disciplines={})
            node = G.nodes[k]
            node["popularity"] += 1
            node["seeds"].append(sid)
            node["hist"][diff[i]] += 1
            node["disciplines"][disc[i]] = node["disciplines"].get(disc[i], 0) + 1
        for a, b in itertools.combinations(ks, 2):
            if G.has_edge(a, b):
                G[a][b]["weight"] += 1
            else:
                G.add_edge(a, b, weight=1)
    ingest_s, ingest_cpu_s, ingest_sys_s = time.perf_counter() - t, time.process_time() - c, sys_s() - sys0
    return dict(seeds=len(seen), kps=G.number_of_nodes(), edges=G.number_of_edges(), ingest_s=ingest_s,
                ingest_cpu_s=ingest_cpu_s, ingest_sys_s=ingest_sys_s,
                base_mb=base, ingest_peak_mb=peak_mb(), peak_mb=peak_mb())


def work_stage(cols, batch: int) -> dict:
    """The graph stage's process(): AnnotatedSeed bytes -> decode, validate, ingest (what the service does)."""
    from linksyn.common.bus.base import Message
    from linksyn.common.config import TopicsConfig
    from linksyn.graph.build import warm_up
    from linksyn.graph.config import GraphConfig
    from linksyn.graph.stage import GraphStage
    from linksyn.v1 import records_pb2

    ip = cols["kp_indptr"]
    msgs = [
        Message("linksyn.seed-kps", 0, i, None, records_pb2.AnnotatedSeed(
            seed=records_pb2.Seed(id=sid, question=cols["question"][i], answer=cols["answer"][i]),
            kps=cols["kps"][ip[i] : ip[i + 1]], discipline=cols["discipline"][i],
            difficulty=int(cols["difficulty"][i])).SerializeToString())
        for i, sid in enumerate(cols["seed_ids"])
    ]
    from linksyn.graph.stage import annotated_seed_decoder

    c = time.process_time()
    cfg = GraphConfig()
    for m in msgs:
        annotated_seed_decoder(cfg)(m.value)
    decode_cpu_s = time.process_time() - c
    jit_s = warm_up()
    with tempfile.TemporaryDirectory() as d:
        stage = GraphStage(GraphConfig(snapshot_url=d), TopicsConfig())
        base = rss_mb()
        t, c = time.perf_counter(), time.process_time()
        for s in range(0, len(msgs), batch):
            stage.process(msgs[s : s + batch])
        n_edges = stage.graph.n_edges
        ingest_s, ingest_cpu_s = time.perf_counter() - t, time.process_time() - c
        return dict(seeds=stage.graph.n_seeds, kps=stage.graph.n_kps, edges=n_edges, ingest_s=ingest_s,
                    ingest_cpu_s=ingest_cpu_s, decode_cpu_s=decode_cpu_s, jit_s=jit_s, base_mb=base,
                    ingest_peak_mb=peak_mb(),
                    peak_mb=peak_mb())


def work_jit() -> dict:
    """Compile (or load from numba's cache) the graph's kernels: what a fresh process pays once before its first
    ingest. The parent points NUMBA_CACHE_DIR at an empty folder to see the first-ever compile."""
    t, c = time.perf_counter(), time.process_time()
    from linksyn.graph.build import warm_up

    import_s = time.perf_counter() - t
    warm_s = warm_up()
    return dict(import_s=import_s, warm_up_s=warm_s, cpu_s=time.process_time() - c)


def worker(args) -> None:
    if args.worker == "jit":
        print("RESULT " + json.dumps(work_jit()))
        return
    if args.worker == "linksyn" and args.worker_input == "synthetic-streamed":
        print("RESULT " + json.dumps(work_linksyn_streamed(args)))
        return
    if args.worker_input == "synthetic":
        cols = synthetic(args.n, args.vocab, args.zipf, args.text_chars)
    else:
        cols = real_columns(Path(args.cache), args.copies)
    if args.worker == "networkx":
        res = work_networkx(cols)
    elif args.worker == "stage":
        res = work_stage(cols, args.batch)
    else:
        res = work_linksyn(cols, args.batch)
    print("RESULT " + json.dumps(res))


def run_worker(kind: str, inp: str, args, n: int = 0, batch: int = 0, copies: int = 1,
               env: dict[str, str] | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--worker-input", inp, "--n", str(n), "--batch", str(batch),
           "--copies", str(copies), "--vocab", str(args.vocab), "--zipf", str(args.zipf),
           "--text-chars", str(args.text_chars), "--cache", args.cache]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                         env={**os.environ, **(env or {})})
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[7:]), "load": os.getloadavg()[0]}
    raise RuntimeError(f"worker {cmd} failed (rc {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


# ---- report ---------------------------------------------------------------------------------------------------


def line(label: str, r: dict) -> str:
    per_s = r["seeds"] / r["ingest_s"]
    snap = (f"  snapshot {r['snapshot_s']:5.2f}s wall {r['snapshot_cpu_s']:5.2f}s cpu" if "snapshot_s" in r
            else f"  decode {r['decode_cpu_s']:5.2f}s cpu{' ' * 17}" if "decode_cpu_s" in r else " " * 35)
    sys_part = f" ({r['ingest_sys_s']:5.2f} sys)" if "ingest_sys_s" in r else ""
    jit = f"  jit warm-up {r['jit_s']:4.2f}s" if "jit_s" in r else ""
    return (f"{label:<34} {r['seeds']:>9,} seeds {r['kps']:>9,} KPs {r['edges']:>10,} edges  "
            f"ingest {r['ingest_s']:7.2f}s wall {r['ingest_cpu_s']:7.2f}s cpu{sys_part} ({per_s:>10,.0f} seeds/s)"
            f"{snap}  ingest MB {r['ingest_peak_mb'] - r['base_mb']:7.0f}  peak MB {r['peak_mb']:6.0f}  "
            f"load {r['load']:4.1f}{jit}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000", help="Synthetic seed counts.")
    ap.add_argument("--batch", type=int, default=10_000, help="Seeds per ingest batch (bulk).")
    ap.add_argument("--stream-batch", type=int, default=64, help="Also ingest the largest size in batches of this "
                    "many seeds (the consumer loop's batch); 0 skips.")
    ap.add_argument("--vocab", type=int, default=1_000_000, help="KP vocabulary size of the Zipf draw.")
    ap.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of KP popularity.")
    ap.add_argument("--text-chars", type=int, default=120, help="Question+answer characters per synthetic seed.")
    ap.add_argument("--nx-sizes", default=None, help="Sizes the networkx baseline ingests (default: every --sizes "
                    "size; ratios are taken at equal sizes, else per seed against the nearest smaller one).")
    ap.add_argument("--nx-seeds", type=int, default=None, help="Shorthand for --nx-sizes with one size (quick runs).")
    ap.add_argument("--stage-seeds", type=int, default=100_000, help="Seeds run through GraphStage.process (protobuf "
                    "decode + validation + ingest, batches of --stream-batch); 0 skips.")
    ap.add_argument("--real", action=argparse.BooleanOptionalAction, default=True, help="Also the real seeds.")
    ap.add_argument("--real-limit", type=int, default=0, help="Annotate at most this many real seeds (0 = all).")
    ap.add_argument("--annotate-budget-s", type=float, default=900, help="Longest time spent annotating real seeds "
                    "in one run (the annotation is cached and resumed by the next run).")
    ap.add_argument("--real-copies", type=int, default=20, help="Also ingest the real seeds repeated this many times "
                    "under new ids (real KP structure at a larger size); 0 or 1 skips.")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "linksyn" / "bench-graph-real-kps.jsonl"))
    ap.add_argument("--stream-input-from", type=int, default=5_000_000, help="Sizes from this many seeds make their "
                    "input batch by batch (not held whole: the 10M-seed point's peak memory is the graph's).")
    ap.add_argument("--timeout", type=float, default=1800)
    add_json_option(ap)
    ap.add_argument("--worker", choices=["linksyn", "networkx", "stage", "jit"], help=argparse.SUPPRESS)
    ap.add_argument("--worker-input", choices=["synthetic", "synthetic-streamed", "real"], help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--copies", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"graph ingest bench: {os.cpu_count()} CPUs visible, affinity {len(os.sched_getaffinity(0))}; "
          f"Zipf s={args.zipf} over {args.vocab:,} KPs, 1+Poisson(3) KPs/seed (max 8), {args.text_chars} text chars")
    # The numba kernels: compiled once ever (then cached on disk), loaded once per process. Neither is in an
    # ingest figure; both are shown here, and every linksyn line shows its own process's warm-up.
    with tempfile.TemporaryDirectory() as empty:
        cold = run_worker("jit", "synthetic", args, env={"NUMBA_CACHE_DIR": empty})
    warm = run_worker("jit", "synthetic", args)
    warm = run_worker("jit", "synthetic", args)  # the first may have had to fill the default cache
    print(f"jit: first-ever compile of the kernels {cold['warm_up_s']:.2f}s (empty cache), {warm['warm_up_s']:.2f}s "
          f"to load them from the cache in a later process; importing linksyn.graph.build (numba included) "
          f"{warm['import_s']:.2f}s; load {cold['load']:.1f}")
    results = {}
    for n in sizes:
        streamed = n >= args.stream_input_from
        results[n] = r = run_worker("linksyn", "synthetic-streamed" if streamed else "synthetic", args, n=n,
                                    batch=args.batch)
        print(line(f"linksyn synthetic{' streamed' if streamed else ''} batch={args.batch}", r))
    if args.stream_batch:
        n = max([s for s in sizes if s < args.stream_input_from] or sizes[:1])  # the largest with its input held
        r = run_worker("linksyn", "synthetic", args, n=n, batch=args.stream_batch)
        print(line(f"linksyn synthetic batch={args.stream_batch}", r))
    if args.stage_seeds:
        r = run_worker("stage", "synthetic", args, n=args.stage_seeds, batch=args.stream_batch or 64)
        print(line(f"graph stage process() batch={args.stream_batch or 64}", r))
    nx_sizes = ([args.nx_seeds] if args.nx_seeds else [int(x) for x in args.nx_sizes.split(",") if x]
                if args.nx_sizes is not None else sizes)
    nxs = {}
    for n in nx_sizes:
        nxs[n] = run_worker("networkx", "synthetic", args, n=n)
        print(line("networkx synthetic (per-pair add_edge)", nxs[n]))
        if n not in results:
            results[n] = run_worker("linksyn", "synthetic", args, n=n, batch=args.batch)
            print(line(f"linksyn synthetic batch={args.batch}", results[n]))

    print()
    print(f"{'seeds':>10} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'ingest MB':>9} {'nx wall s':>9} {'nx CPU s':>8} "
          f"{'ratio CPU':>9} {'ratio wall':>10}  (linksyn batch={args.batch}; ratio = networkx / linksyn per seed)")
    ratios = {}
    for n in sorted(results):
        r = results[n]
        ref = max((m for m in nxs if m <= n), default=None)
        if ref is None:
            ref = min(nxs)
        x = nxs[ref]
        ratios[n] = (x["ingest_cpu_s"] / x["seeds"]) / (r["ingest_cpu_s"] / r["seeds"])
        wall = (x["ingest_s"] / x["seeds"]) / (r["ingest_s"] / r["seeds"])
        note = "" if ref == n else f"  (networkx at {ref:,}, per seed)"
        print(f"{n:>10,} {r['ingest_s']:7.2f} {r['ingest_cpu_s']:7.2f} {r['peak_mb']:8.0f} "
              f"{r['ingest_peak_mb'] - r['base_mb']:9.0f} {x['ingest_s']:9.2f} {x['ingest_cpu_s']:8.2f} "
              f"{ratios[n]:8.1f}x {wall:9.1f}x{note}")
    if len(sizes) >= 2:
        a, b = results[sizes[0]], results[sizes[-1]]
        f = sizes[-1] / sizes[0]
        def grew(k: str) -> float:
            return b[k] / a[k]

        def grew_mb(x: dict, y: dict) -> float:
            return (y["ingest_peak_mb"] - y["base_mb"]) / max(1, x["ingest_peak_mb"] - x["base_mb"])

        print(f"growth {sizes[0]:,} -> {sizes[-1]:,} seeds (x{f:g}): ingest cpu x{grew('ingest_cpu_s'):.1f} "
              f"(wall x{grew('ingest_s'):.1f}), snapshot cpu x{grew('snapshot_cpu_s'):.1f}, ingest memory "
              f"x{grew_mb(a, b):.1f}, peak memory x{grew('peak_mb'):.1f}, edges x{grew('edges'):.1f}, "
              f"KPs x{grew('kps'):.1f}, pairs x{grew('pairs'):.1f}")
        if sizes[0] in nxs and sizes[-1] in nxs:
            xa, xb = nxs[sizes[0]], nxs[sizes[-1]]
            print(f"  networkx over the same growth: cpu x{xb['ingest_cpu_s'] / xa['ingest_cpu_s']:.1f}, "
                  f"ingest memory x{grew_mb(xa, xb):.1f}")
    big = results[sizes[-1]]
    ratio = ratios[sizes[-1]]
    figures: list[Figure] = [
        Figure("jit compile of the graph kernels, empty cache (once ever)", cold["warm_up_s"], "s",
               note="not in any ingest figure"),
        Figure("jit load of the graph kernels from the cache (once per process)", warm["warm_up_s"], "s",
               note="not in any ingest figure"),
    ]
    notes = [f"synthetic: Zipf s={args.zipf} over {args.vocab:,} KPs, 1+Poisson(3) KPs a seed; batches of "
             f"{args.batch:,}; networkx ratios by CPU time at "
             + ", ".join(f"{n:,}" for n in sorted(nxs)) + " seeds; load average shown per run in the log"]
    for n in sorted(results):
        r = results[n]
        last = n == 1_000_000  # the aims are stated for 1M seeds; other sizes are reported without one
        figures.append(Figure(f"ingest {n:,} seeds, wall", r["ingest_s"], "s", aim=Aim("<", 10) if last else None,
                              note=f"{r['ingest_cpu_s']:.2f} s CPU; load {r['load']:.1f}"))
        figures.append(Figure(f"ingest {n:,} seeds, peak memory", r["peak_mb"], "MB",
                              aim=Aim("<", 2048) if last else None,
                              note="VmHWM of the run, " + ("input made batch by batch (not held)" if r.get("streamed")
                                                           else "input included")))
        x = nxs[max((m for m in nxs if m <= n), default=min(nxs))]
        figures.append(Figure(f"ingest {n:,} seeds vs networkx, CPU per seed", r["ingest_cpu_s"] / r["seeds"] * 1e6,
                              "us/seed", "networkx", x["ingest_cpu_s"] / x["seeds"] * 1e6, ratios[n],
                              Aim(">=", 20, on="ratio") if last else None,
                              note="ratio = networkx / linksyn (higher is better)"))
    print(f"aims (2 cores): {sizes[-1]:,} seeds in {big['ingest_s']:.1f}s wall / {big['ingest_cpu_s']:.1f}s cpu "
          f"(< 10 s: {'yes' if big['ingest_s'] < 10 else 'NO'}), peak {big['peak_mb']:.0f} MB including the input "
          f"(< 2048: {'yes' if big['peak_mb'] < 2048 else 'NO'}), {ratio:.1f}x networkx "
          f"(>= 20x: {'yes' if ratio >= 20 else 'NO'})")

    if not args.real:
        figures.append(Figure.skip("real seeds vs networkx", "--no-real"))
    if args.real:
        print()
        cache = annotate_real(args)
        if cache is None:
            figures.append(Figure.skip("real seeds vs networkx", f"no annotated real seeds ({real_seeds_dir()})"))
        if cache is not None:
            r = run_worker("linksyn", "real", args, batch=args.batch)
            print(line("linksyn real seeds", r))
            rn = run_worker("networkx", "real", args)
            print(line("networkx real seeds", rn))
            print(f"real seeds: linksyn {rn['ingest_cpu_s'] / r['ingest_cpu_s']:.1f}x networkx (cpu)")
            figures.append(Figure(f"real seeds ({r['seeds']:,}), ingest CPU", r["ingest_cpu_s"], "s", "networkx",
                                  rn["ingest_cpu_s"], rn["ingest_cpu_s"] / r["ingest_cpu_s"],
                                  note="ratio = networkx / linksyn; LLM-free keyphrase annotation"))
            if args.real_copies > 1:
                r = run_worker("linksyn", "real", args, batch=args.batch, copies=args.real_copies)
                print(line(f"linksyn real seeds x{args.real_copies}", r))
                rn = run_worker("networkx", "real", args, copies=args.real_copies)
                print(line(f"networkx real seeds x{args.real_copies}", rn))
                print(f"real seeds x{args.real_copies}: linksyn {rn['ingest_cpu_s'] / r['ingest_cpu_s']:.1f}x networkx (cpu)")
                figures.append(Figure(f"real seeds x{args.real_copies} ({r['seeds']:,}), ingest CPU", r["ingest_cpu_s"],
                                      "s", "networkx", rn["ingest_cpu_s"], rn["ingest_cpu_s"] / r["ingest_cpu_s"],
                                      note="ratio = networkx / linksyn; the real seeds repeated under new ids"))
    if args.json:
        write_json(args.json, figures, notes)


if __name__ == "__main__":
    main()
