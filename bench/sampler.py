"""Sampler benchmark: `python bench/sampler.py [--seeds 1000000] [--kps 200000]` (about 8 minutes on 2 cores).

Two graphs, built in-process with linksyn.graph.build.KPGraph:
- synthetic: Zipf-popular KPs, ~4 KPs per seed, 8 disciplines in KP blocks, grades 1-5 at random;
- real seeds (/work/shared/data: MMLU dev+val, GSM8K train, MATH 1000; skipped if absent): discipline, subdiscipline
  and difficulty from the taxonomy (linksyn.extractor.annotation.seed_labels: MMLU subject, GSM8K source, MATH type
  and level), KPs = the seed's subject plus the 4 most frequent content n-grams of question + answer
  (linksyn.extractor.keyphrase.candidates). The LLM-free KeyphraseExtractor (a MiniLM pass + MMR over the same
  candidates) is not used: it annotated 512 of these seeds in 256 s (2 seeds/s, model load 23 s) on the shared
  2-core machine, i.e. well over an hour for the 10,300 seeds.

For each graph, in one run:
- paths/s (walks + seed selection + counter updates; not record encoding) of the vectorised sampler with the
  value-guided walker and with the uniform and weight-only walkers, of igraph Graph.random_walk(start, 4,
  weights=...) called once per walk and of a plain-Python weighted walk (both subsampled: per-path rates), and the
  ratios, all measured in this process (the machine is shared: compare ratios, not absolute rates, across runs);
- KP coverage, Gini of KP visit counts, seed coverage and target distance (total variation of the discipline and
  difficulty shares of paths from their targets) after 0.1x, 0.5x and 1x as many paths as the graph has KPs, for
  the value-guided, uniform and weight-only walkers (same sampler settings otherwise; default WalkParams), on the
  synthetic graph with skewed discipline targets and on the real graph with natural and with uniform targets.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
from linksyn.graph.build import KPGraph, SeedBatch
from linksyn.sampler.sampler import Sampler, WalkParams
from linksyn.sampler.targets import Targets
from linksyn.sampler.value import gini

REPO = Path(__file__).resolve().parents[1]
FRACTIONS = (0.1, 0.5, 1.0)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Figure, add_json_option, write_json  # noqa: E402


def synthetic(n_seeds: int, n_kps: int, n_disc: int = 8, rng_seed: int = 0):
    rng = np.random.default_rng(rng_seed)
    k = np.clip(rng.poisson(3.0, n_seeds) + 1, 2, 8)  # ~4 KPs per seed
    indptr = np.zeros(n_seeds + 1, np.int64)
    np.cumsum(k, out=indptr[1:])
    # Zipf(1.0) KP popularity; a seed's KPs come from its discipline's block of KPs (disciplines cluster).
    disc = rng.integers(0, n_disc, n_seeds)
    per = n_kps // n_disc
    ranks = np.arange(1, per + 1)
    p = 1.0 / ranks
    p /= p.sum()
    local = rng.choice(per, size=int(indptr[-1]), p=p)
    kp = np.repeat(disc, k) * per + local
    names = np.array([f"kp{i}" for i in range(n_kps)], dtype=object)
    seed_ids = [f"s{i}" for i in range(n_seeds)]
    batch = SeedBatch(
        seed_ids=seed_ids, kp_indptr=indptr, kps=names[kp].tolist(),
        discipline=[f"d{d}" for d in disc], difficulty=rng.integers(1, 6, n_seeds).astype(np.int8),
        question=[f"q{i}" for i in range(n_seeds)], answer=[f"a{i}" for i in range(n_seeds)],
    )
    g = KPGraph()
    g.ingest(batch)
    return g.to_snapshot(1)


def real_seeds(data: Path):
    from linksyn.common.seeds import SeedReader
    from linksyn.common.taxonomy import load_taxonomy
    from linksyn.extractor.annotation import seed_labels
    from linksyn.extractor.keyphrase import candidates, seed_text

    taxonomy = load_taxonomy()
    sources = [data / "seeds/mmlu/dev", data / "seeds/mmlu/val", data / "seeds/gsm8k/train.jsonl",
               data / "seeds/math/math_1000.jsonl"]
    ids, kps, disc, diff, qs, ans = [], [], [], [], [], []
    for seed in SeedReader([str(s) for s in sources]):
        labels = seed_labels(seed, taxonomy)
        subject = (seed.subject or labels.subdiscipline or "general").lower().replace("_", " ")
        ids.append(seed.id)
        kps.append([subject] + [c.phrase for c in candidates(seed_text(seed), 2, 4)])
        disc.append(labels.discipline)
        diff.append(labels.difficulty)
        qs.append(seed.question)
        ans.append(seed.answer)
    g = KPGraph()
    g.ingest(SeedBatch.from_lists(ids, kps, disc, diff, qs, ans))
    return g.to_snapshot(1)


def python_walk(indptr, indices, weights, start, steps, rnd):
    """Plain-Python weighted walk without revisits (the obvious implementation)."""
    path = [start]
    u = start
    for _ in range(steps):
        lo, hi = indptr[u], indptr[u + 1]
        cand = [(int(indices[i]), float(weights[i])) for i in range(lo, hi) if int(indices[i]) not in path]
        if not cand:
            break
        tot = sum(w for _, w in cand)
        x = rnd.random() * tot
        for v, w in cand:
            x -= w
            if x <= 0:
                break
        path.append(v)
        u = v
    return path


def rate(s: Sampler, n: int) -> float:
    t = time.perf_counter()
    s.draw(n)
    return n / (time.perf_counter() - t)


def speed(base: Sampler, n_paths: int, batch: int, label: str, n_igraph: int, n_python: int) -> list[Figure]:
    """paths/s after a warm-up that takes each sampler past the ramp of its control batches (so batches are full)."""
    import igraph as ig
    from linksyn.graph.analysis import to_igraph

    snap = base.snapshot
    params = WalkParams(batch_size=batch)
    rates = {}
    for walker in ("value", "uniform", "weight"):
        s = base.fresh(params.model_copy(update={"walker": walker}))
        s.draw(max(4 * batch, 20_000))  # warm-up: history large enough for full batches
        rates[walker] = rate(s, n_paths)
    g: ig.Graph = to_igraph(snap, attributes=False)
    w = g.es["weight"]
    starts = np.flatnonzero(np.diff(snap.indptr) > 0)
    rnd = random.Random(0)
    t = time.perf_counter()
    for _ in range(n_igraph):
        g.random_walk(int(starts[rnd.randrange(len(starts))]), 4, weights=w)
    igr = n_igraph / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(n_python):
        python_walk(snap.indptr, snap.indices, snap.weights, int(starts[rnd.randrange(len(starts))]), 4, rnd)
    py = n_python / (time.perf_counter() - t)
    v = rates["value"]
    print(f"[{label}] paths/s (batches of {batch:,}, {n_paths:,} paths each):\n"
          f"  vectorised value-guided {v:>10,.0f}  (walk + seeds + counters)\n"
          f"  vectorised uniform      {rates['uniform']:>10,.0f}  (value/uniform = {v / rates['uniform']:.2f})\n"
          f"  vectorised weight-only  {rates['weight']:>10,.0f}  (value/weight = {v / rates['weight']:.2f})\n"
          f"  igraph random_walk      {igr:>10,.1f}  per walk, {n_igraph} walks (value is x{v / igr:,.0f})\n"
          f"  plain Python walk       {py:>10,.0f}  per walk, {n_python} walks (value is x{v / py:,.0f})", flush=True)
    name = f"[{label}] vectorised value-guided paths/s"
    note = f"batches of {batch:,}, {n_paths:,} paths; walk + seeds + counters"
    return [
        Figure(name, v, "paths/s", f"igraph random_walk, per walk, {n_igraph} walks", igr, note=note),
        Figure(name, v, "paths/s", f"plain Python walk, {n_python} walks", py, note=note),
        Figure(name, v, "paths/s", "vectorised uniform walker", rates["uniform"], note=note),
        Figure(name, v, "paths/s", "vectorised weight-only walker", rates["weight"], note=note),
    ]


def quality(base: Sampler, label: str, targets: Targets) -> list[Figure]:
    snap = base.snapshot
    marks = [max(1, int(f * snap.n_kps)) for f in FRACTIONS]
    print(f"[{label}] {snap.n_kps:,} KPs, {snap.n_seeds:,} seeds; after 0.1x / 0.5x / 1x as many paths as KPs "
          f"({', '.join(f'{m:,}' for m in marks)}):", flush=True)
    print(f"  {'walker':8s} {'paths':>8s} {'KP cov':>7s} {'Gini':>6s} {'seed cov':>8s} {'TV disc':>8s} "
          f"{'TV diff':>8s} {'paths/s':>8s}")
    last: dict[str, tuple[float, float, float, float, float]] = {}
    for walker in ("value", "uniform", "weight"):
        s = base.fresh(WalkParams(walker=walker), targets)
        t = time.perf_counter()
        for m in marks:
            s.draw(m - s.counters.paths_emitted)
            c = s.counters
            d_disc, d_diff = s.target_distance()
            print(f"  {walker:8s} {m:>8,} {np.mean(c.kp_cov > 0):>7.3f} {gini(c.kp_cov):>6.3f} "
                  f"{np.mean(c.seed_use > 0):>8.3f} {d_disc:>8.3f} {d_diff:>8.3f} "
                  f"{c.paths_emitted / (time.perf_counter() - t):>8,.0f}", flush=True)
        last[walker] = (float(np.mean(c.kp_cov > 0)), float(gini(c.kp_cov)), float(np.mean(c.seed_use > 0)),
                        d_disc, d_diff)
    st = base.fresh(WalkParams(), targets)
    st.draw(marks[-1])
    disc = st.stats()["discipline"]
    worst = sorted(disc["target"], key=lambda d: -abs(disc["target"][d] - disc["realised"][d]))[:3]
    print("  value-guided, largest discipline gaps (target -> realised): "
          + ", ".join(f"{d} {disc['target'][d]:.3f} -> {disc['realised'][d]:.3f}" for d in worst), flush=True)
    figures = []
    metrics = (("KP coverage", "share", "higher"), ("Gini of KP visits", "Gini", "lower"),
               ("seed coverage", "share", "higher"), ("TV distance, discipline", "TV", "lower"),
               ("TV distance, difficulty", "TV", "lower"))
    for i, (what, unit, better) in enumerate(metrics):
        figures.append(Figure(f"[{label}] value-guided {what} after {marks[-1]:,} paths", last["value"][i], unit,
                              "uniform walker", last["uniform"][i], note=f"{better} is better; weight-only walker "
                              f"{last['weight'][i]:.3f}"))
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1_000_000)
    ap.add_argument("--kps", type=int, default=200_000)
    ap.add_argument("--paths", type=int, default=200_000, help="paths per speed measurement")
    ap.add_argument("--batch", type=int, default=65_536, help="batch_size of the speed measurement")
    ap.add_argument("--igraph-walks", type=int, default=30)
    ap.add_argument("--python-walks", type=int, default=2000)
    add_json_option(ap)
    args = ap.parse_args()
    figures: list[Figure] = []
    notes: list[str] = []
    t0 = time.perf_counter()
    t = time.perf_counter()
    snap = synthetic(args.seeds, args.kps)
    print(f"synthetic graph: {snap.n_seeds:,} seeds, {snap.n_kps:,} KPs, {snap.n_edges:,} edges, max degree "
          f"{int(np.diff(snap.indptr).max()):,} (built in {time.perf_counter() - t:.1f}s)", flush=True)
    t = time.perf_counter()
    base = Sampler(snap)
    print(f"sampler setup (edge->seed index): {time.perf_counter() - t:.1f}s", flush=True)
    figures += speed(base, args.paths, args.batch, "synthetic", args.igraph_walks, args.python_walks)
    skew = {f"d{i}": (0.3 if i == 0 else 0.1) for i in range(8)}
    figures += quality(base, "synthetic, discipline targets d0 0.3, others 0.1; grades uniform",
                       Targets(discipline=skew))
    notes.append(f"synthetic graph: {snap.n_seeds:,} seeds, {snap.n_kps:,} KPs, {snap.n_edges:,} edges")
    del base, snap

    data = Path(os.environ.get("LINKSYN_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (data / "seeds").is_dir():
        print(f"real-seed graph: skipped ({data}/seeds not found; set LINKSYN_SHARED_DATA)")
        if args.json:
            figures.append(Figure.skip("[real] every figure", f"{data}/seeds not found (set LINKSYN_SHARED_DATA)"))
            write_json(args.json, figures, notes)
        return
    t = time.perf_counter()
    real = real_seeds(data)
    print(f"real-seed graph: {real.n_seeds:,} seeds, {real.n_kps:,} KPs, {real.n_edges:,} edges, "
          f"{len(real.disciplines)} taxonomy disciplines (built in {time.perf_counter() - t:.1f}s)", flush=True)
    base = Sampler(real)
    figures += speed(base, min(args.paths, 100_000), min(args.batch, 16_384), "real", args.igraph_walks * 10,
                     args.python_walks)
    figures += quality(base, "real, natural targets (each class's share of seed attachments)",
                       Targets(default="natural"))
    notes.append(f"real-seed graph: {real.n_seeds:,} seeds, {real.n_kps:,} KPs, {real.n_edges:,} edges")
    # Uniform over 17 disciplines sends 16/17 of the paths to the 28% of KPs outside mathematics: the mix is met,
    # and coverage is capped by it (mathematics, 72% of the KPs, gets 1/17 of the starts).
    figures += quality(base, "real, uniform discipline and grade targets (the config default)", Targets())
    print(f"total {time.perf_counter() - t0:.0f}s")
    if args.json:
        write_json(args.json, figures, notes)


if __name__ == "__main__":
    main()
