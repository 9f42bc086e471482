"""Extraction benchmark: speed and label agreement of every annotator available here, on real seeds.

    .venv/bin/python bench/extract.py [--seeds 200] [--throughput-seeds 2000] [--slow-seeds 256] [--llm-seeds 24]
                                      [--openai openai:URL#MODEL] [--no-hf]

Agreement: --seeds real seeds, a deterministic 3:2 mix of MMLU dev/val questions (subject labels; difficulty implied
by the elementary_/high_school_/college_/professional_ prefix) and MATH problems (type and Level 1-5) from
../shared/data (LINKSYN_SHARED_DATA), taken only from the held-out side of the difficulty model's fitting split
(`linksyn.extractor.difficulty.is_held_out`), so the fitted difficulty model is never scored on its fitting data.
For each annotator, with trust_seed_labels OFF so discipline and difficulty are predicted: seeds/s, tokens/s (LLMs),
the share of seeds annotated, and agreement with the seeds' own labels (discipline: the taxonomy's mapping of the
subject; difficulty: exact and within one level, over seeds whose label implies one). The majority-class baseline
(always answer the most frequent label) is printed for reference.

Throughput: --throughput-seeds real seeds (MMLU + MATH + GSM8K train, any split) through the keyphrase extractor:
the batched v2 in static and contextual token modes against the frozen v1 (bench/keyphrase_v1.py), with and without
KP merging, all in this process. The contextual modes (v1 and v2) run on the first --slow-seeds of them (they are
~100x slower on CPUs). The 1-minute load average is printed beside each row: the machine is shared.
The LLM backends are slow on CPUs: they annotate the first --llm-seeds seeds of the agreement mix (interleaved, so
MMLU and MATH are both represented).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LINKSYN_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/keyphrase_v1.py, bench/report.py

from report import Figure, add_json_option, write_json  # noqa: E402


def _mmlu_and_math():
    from linksyn.common.benchmarks import mmlu_subject
    from linksyn.common.seeds.rows import math_seed, mmlu_csv_seed

    mmlu_files = sorted((SHARED / "seeds" / "mmlu" / "dev").glob("*.csv")) + sorted(
        (SHARED / "seeds" / "mmlu" / "val").glob("*.csv"))
    math_file = SHARED / "seeds" / "math" / "math_1000.jsonl"
    if not mmlu_files or not math_file.is_file():
        return None
    mmlu = []
    for f in mmlu_files:
        subject = mmlu_subject(f.stem)
        with f.open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.reader(fh)):
                mmlu.append(mmlu_csv_seed(row, subject=subject, source=f"mmlu:{f.name}:{i}"))
    math = [math_seed(json.loads(line), f"math:{math_file.name}:{i}")
            for i, line in enumerate(math_file.read_text(encoding="utf-8").splitlines())]
    return mmlu, [s for s in math if s.difficulty]


def load_seeds(n: int, held_out_only: bool = True):
    """`n` seeds, 3 MMLU : 2 MATH, interleaved so any prefix holds both kinds; None when the data is absent."""
    from linksyn.extractor.difficulty import is_held_out

    both = _mmlu_and_math()
    if both is None:
        return None
    mmlu, math = both
    if held_out_only:
        mmlu = [s for s in mmlu if is_held_out(s.id)]
        math = [s for s in math if is_held_out(s.id)]
    rng = random.Random(0)
    rng.shuffle(mmlu)
    rng.shuffle(math)
    n_math = n * 2 // 5
    picked_mmlu, picked_math = mmlu[: n - n_math], math[:n_math]
    out, i, j = [], 0, 0
    while i < len(picked_mmlu) or j < len(picked_math):
        for _ in range(3):
            if i < len(picked_mmlu):
                out.append(picked_mmlu[i]); i += 1
        for _ in range(2):
            if j < len(picked_math):
                out.append(picked_math[j]); j += 1
    if len(out) < n:
        print(f"note: only {len(out)} held-out seeds available (asked for {n})", file=sys.stderr)
    return out


def throughput_seeds(n: int):
    """`n` real seeds of every kind (MMLU, MATH, GSM8K train), shuffled; fewer if the data holds fewer."""
    from linksyn.common.seeds.rows import gsm8k_seed

    both = _mmlu_and_math()
    if both is None:
        return None
    seeds = both[0] + both[1]
    gsm = SHARED / "seeds" / "gsm8k" / "train.jsonl"
    if gsm.is_file():
        seeds += [gsm8k_seed(json.loads(line), f"gsm8k:train.jsonl:{i}")
                  for i, line in enumerate(gsm.read_text(encoding="utf-8").splitlines()[:n])]
    random.Random(1).shuffle(seeds)
    return seeds[:n]


def agreement(seeds, outcomes, taxonomy):
    """(annotated share, discipline agreement, difficulty exact, difficulty within 1, n_disc, n_diff)."""
    d_ok = d_n = f_ok = f_near = f_n = done = 0
    for s, o in zip(seeds, outcomes):
        label = taxonomy.label_for(s.subject, s.source)
        level = s.difficulty or (label.difficulty if label else 0)
        if o.annotation is None:
            continue
        done += 1
        if label:
            d_n += 1
            d_ok += o.annotation.discipline == label.discipline
        if level:
            f_n += 1
            f_ok += o.annotation.difficulty == level
            f_near += abs(o.annotation.difficulty - level) <= 1
    return done / len(seeds), d_ok / max(1, d_n), f_ok / max(1, f_n), f_near / max(1, f_n), d_n, f_n


def majority_baseline(seeds, taxonomy):
    discs = [taxonomy.label_for(s.subject, s.source).discipline for s in seeds if taxonomy.label_for(s.subject, s.source)]
    levels = [s.difficulty or taxonomy.label_for(s.subject).difficulty for s in seeds]
    levels = [x for x in levels if x]
    top_d, nd = Counter(discs).most_common(1)[0]
    top_l, nl = Counter(levels).most_common(1)[0]
    near = sum(abs(x - top_l) <= 1 for x in levels)
    return f"always {top_d!r} / level {top_l}", nd / len(discs), nl / len(levels), near / len(levels)


def run(name, extractor, seeds, taxonomy, rows, note=""):
    load = os.getloadavg()[0]
    start = time.perf_counter()
    outcomes = extractor.extract(seeds)
    secs = time.perf_counter() - start
    share, disc, exact, near, nd, nf = agreement(seeds, outcomes, taxonomy)
    pt = sum(o.prompt_tokens for o in outcomes)
    ct = sum(o.completion_tokens for o in outcomes)
    note = f"{note}{'; ' if note else ''}load {load:.1f}"
    rows.append((name, len(seeds), secs, len(seeds) / secs, (pt + ct) / secs if pt + ct else None,
                 ct / secs if ct else None, share, disc, exact, near, note))
    errors = Counter((o.error or "")[:70] for o in outcomes if o.annotation is None)
    for e, k in errors.most_common(3):
        print(f"  [{name}] {k} x failed: {e}", file=sys.stderr)
    examples = [(s.subject, o.annotation.kps) for s, o in zip(seeds, outcomes) if o.annotation][:3]
    for subj, kps in examples:
        print(f"  [{name}] {subj}: {kps}", file=sys.stderr)
    return outcomes


def print_table(title, rows, baseline=None):
    print(f"\n{title}\n")
    head = ("annotator", "seeds", "secs", "seeds/s", "tok/s", "out tok/s", "annotated", "disc agree", "diff exact",
            "diff +-1", "note")
    print(" | ".join(f"{h:>10}" for h in head))
    for r in rows:
        cells = [r[0], r[1], f"{r[2]:.1f}", f"{r[3]:.2f}", "-" if r[4] is None else f"{r[4]:.0f}",
                 "-" if r[5] is None else f"{r[5]:.1f}", f"{r[6]:.0%}", f"{r[7]:.0%}", f"{r[8]:.0%}", f"{r[9]:.0%}", r[10]]
        print(" | ".join(f"{c!s:>10}" for c in cells))
    if baseline:
        name, disc, exact, near = baseline
        print(f"{'majority':>10} | {'':>10} | {'':>10} | {'':>10} | {'':>10} | {'':>10} | {'':>10} | {disc:>10.0%} | "
              f"{exact:>10.0%} | {near:>10.0%} | {name}")


def keyphrase_extractors(embedder, base_cfg, merge: bool, trust: bool = False):
    """name -> Extractor: frozen v1, v2 contextual, v2 static (same config otherwise)."""
    import keyphrase_v1
    from linksyn.common.taxonomy import load_taxonomy
    from linksyn.extractor.extractor import Extractor
    from linksyn.extractor.kp_canon import KPCanon

    cfg = base_cfg.model_copy(update={"mode": "keyphrase", "kp_merge": merge, "trust_seed_labels": trust})
    tag = "+merge" if merge else "no merge"
    v1 = Extractor(keyphrase_v1.KeyphraseExtractor(embedder, load_taxonomy(), trust_seed_labels=trust),
                   keyphrase_v1.KPCanonV1(embedder.encode) if merge else KPCanon(None))
    return {
        f"v1 contextual ({tag})": v1,
        f"v2 contextual ({tag})": Extractor.from_config(cfg, embedder=embedder),
        f"v2 static ({tag})": Extractor.from_config(cfg.model_copy(update={"keyphrase_tokens": "static"}),
                                                   embedder=embedder),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=200, help="held-out seeds for the agreement table")
    ap.add_argument("--throughput-seeds", type=int, default=2000, help="seeds for the static keyphrase throughput")
    ap.add_argument("--slow-seeds", type=int, default=256,
                    help="of those, how many the contextual keyphrase extractors (v1 and v2) annotate")
    ap.add_argument("--llm-seeds", type=int, default=24, help="seeds for each LLM backend (slow on CPUs)")
    ap.add_argument("--llm-batch", type=int, default=8, help="hf batch size")
    ap.add_argument("--openai", default=None, help="an openai:URL#MODEL spec of a running server to measure too")
    ap.add_argument("--no-hf", action="store_true", help="skip the in-process embedded model")
    add_json_option(ap)
    args = ap.parse_args()

    seeds = load_seeds(args.seeds)
    if seeds is None:
        print(f"skipped: real seeds not found under {SHARED} (set LINKSYN_SHARED_DATA)")
        if args.json:
            write_json(args.json, [Figure.skip("every figure (agreement and throughput)",
                                               f"real seeds not found under {SHARED} (set LINKSYN_SHARED_DATA)")])
        return
    import torch
    from linksyn.common.taxonomy import load_taxonomy
    from linksyn.extractor.config import ExtractorConfig
    from linksyn.extractor.embedding import shared_embedder
    from linksyn.extractor.extractor import Extractor

    taxonomy = load_taxonomy()
    embedder = shared_embedder()
    base_cfg = ExtractorConfig(trust_seed_labels=False)
    print(f"{os.cpu_count()} CPUs visible, torch threads {torch.get_num_threads()}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", file=sys.stderr)

    # Agreement on held-out labelled seeds (labels not trusted: everything predicted).
    rows: list[tuple] = []
    for name, ex in keyphrase_extractors(embedder, base_cfg, merge=False).items():
        run(name, ex, seeds, taxonomy, rows)

    llm_seeds = seeds[: args.llm_seeds]
    if not args.no_hf:
        from linksyn.common.llm import load_llm
        from linksyn.common.llm.config import LLMConfig

        llm = load_llm("embedded", LLMConfig(batch_size=args.llm_batch))
        ex = Extractor.from_config(base_cfg, llm=llm, embedder=embedder)
        ex.extract(llm_seeds[:1])  # warm-up (first-call compilation, grammar caches)
        run(f"llm {llm.model_name}", ex, llm_seeds, taxonomy, rows, f"batch {args.llm_batch}")
        llm.close()
    if args.openai:
        from linksyn.common.llm import load_llm
        from linksyn.common.llm.config import LLMConfig

        llm = load_llm(args.openai, LLMConfig())
        ex = Extractor.from_config(base_cfg, llm=llm, embedder=embedder)
        run(f"llm {args.openai}", ex, llm_seeds, taxonomy, rows)
        llm.close()
    print_table(f"agreement: {len(seeds)} held-out real seeds ({sum(s.source.startswith('math') for s in seeds)} "
                f"MATH with levels, {sum(s.source.startswith('mmlu') for s in seeds)} MMLU with subjects); "
                "trust_seed_labels OFF", rows, majority_baseline(seeds, taxonomy))

    # Throughput on many real seeds of every kind, labels trusted as in production (difficulty still predicted
    # where a seed has no level). v2 static's token table is filled by the agreement run above for its tokens;
    # new tokens are computed (and timed) here.
    many = throughput_seeds(args.throughput_seeds)
    slow = many[: args.slow_seeds]
    speed: list[tuple] = []
    for merge in (False, True):
        for name, ex in keyphrase_extractors(embedder, base_cfg, merge=merge, trust=True).items():
            batch = many if name.startswith("v2 static") else slow
            before = embedder.static_table_size()
            run(name, ex, batch, taxonomy, speed)
            if name.startswith("v2 static"):
                speed[-1] = speed[-1][:-1] + (f"{speed[-1][-1]}; +{embedder.static_table_size() - before} tokens",)
    print_table("throughput: real MMLU + MATH + GSM8K seeds, trust_seed_labels ON (agreement columns are then "
                "mostly the labels themselves)", speed)
    by = {r[0]: r[3] for r in speed}
    for tag in ("no merge", "+merge"):
        v1 = by[f"v1 contextual ({tag})"]
        print(f"{tag}: v2 contextual {by[f'v2 contextual ({tag})'] / v1:.1f}x v1, v2 static "
              f"{by[f'v2 static ({tag})'] / v1:.1f}x v1 (v1 {v1:.2f} seeds/s)")
    best = by["v2 static (+merge)"]
    print(f"v2 static +merge: {best:.1f} seeds/s here -> 1M seeds in {1e6 / best / 3600:.1f} h (one process, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
    if args.json:
        skipped = [Figure.skip("llm embedded (hf, in-process): agreement and seeds/s", "--no-hf")] if args.no_hf else []
        write_json(args.json, extract_figures(rows, majority_baseline(seeds, taxonomy), speed, best) + skipped, [
            f"agreement: {len(seeds)} held-out real seeds (trust_seed_labels OFF), LLMs on the first "
            f"{len(llm_seeds)}; throughput: {len(many)} real seeds (contextual modes on the first {len(slow)}), "
            "labels trusted"])


def extract_figures(rows, majority, speed, best) -> list[Figure]:
    """The agreement rows against the majority-class baseline, the throughput rows against frozen v1."""
    out = []
    name, m_disc, m_exact, m_near = majority
    for r in rows:
        out.append(Figure(f"agreement run, {r[0]}: seeds/s", r[3], "seeds/s",
                          note=f"{r[1]} seeds in {r[2]:.1f} s, annotated {r[6]:.0%}; {r[10]}"))
        for label, value, base in (("discipline agreement", r[7], m_disc), ("difficulty exact", r[8], m_exact),
                                   ("difficulty within 1", r[9], m_near)):
            out.append(Figure(f"agreement run, {r[0]}: {label}", value, "share", f"majority class: {name}", base))
    for r in speed:
        tag = "+merge" if "+merge" in r[0] else "no merge"
        v1 = next(x for x in speed if x[0] == f"v1 contextual ({tag})")
        base = {} if r is v1 else {"baseline_name": v1[0], "baseline_value": v1[3]}
        out.append(Figure(f"throughput, {r[0]}: seeds/s", r[3], "seeds/s",
                          note=f"{r[1]} seeds in {r[2]:.1f} s; {r[10]}", **base))
    out.append(Figure("v2 static (+merge): hours for 1M seeds", 1e6 / best / 3600, "h",
                      note="one process, from the seeds/s above"))
    return out


if __name__ == "__main__":
    main()
