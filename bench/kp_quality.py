"""Knowledge-point quality, per language, on real seeds with known subjects: the keyphrase extractor and the
embedded LLM, each against the code before issue 16 (frozen in bench/keyphrase_v2.py; the LLM with its old prompt
extract-v1 and no KP validator), all in this process.

    .venv/bin/python bench/kp_quality.py [--en-seeds 400] [--llm-seeds 12] [--throughput-seeds 2000] [--no-llm]

Seeds (never a test split): Chinese = CMMLU dev (../shared/data/eval/cmmlu/data/dev, 67 subjects, 335 questions, in
file order); English = held-out MMLU dev/val + MATH (bench/extract.py's `load_seeds`: 3 MMLU : 2 MATH, only the
side of the difficulty model's fitting split it was not fitted on). Labels are not trusted (discipline and grade
are predicted); seeds go through in batches of 32, as the stage takes them. Per language and annotator:

- discipline agreement: predicted discipline == the taxonomy's mapping of the seed's subject; baseline: always the
  most common discipline of that language's seeds (majority class);
- grade agreement (exact) over seeds whose source implies a grade (MMLU/CMMLU prefix elementary_/high_school_/
  college_/professional_, MATH level); baseline: the majority grade;
- grounded share: KPs found in their own seed's text after the extractor's normalisation (linksyn.extractor.
  kp_check.SeedText.is_grounded: canonical form, whole words, LaTeX command names; folded substring for Chinese);
- junk share: KPs the validator would drop (choice labels, numbers, units, stopwords, single characters,
  fragments; linksyn.extractor.kp_check), measured on the KPs each annotator outputs;
- whole-word share (Chinese): of the Chinese KPs found in their seed's text, those whose ends fall on word
  boundaries of jieba's segmentation of that text;
- merges: near-synonym merge decisions, by script, with a sample printed for inspection;
- seeds/s of the whole extraction (annotation, validation, merging).

The LLM rows (the packaged SmolLM2-135M in-process, llama.cpp engine by default: slow on CPUs) run on
--llm-seeds seeds of each language (every k-th seed, so several subjects). Throughput: --throughput-seeds real English seeds (bench/extract.py's MMLU + MATH + GSM8K mix) through the
keyphrase extractor, static tokens + KP merging, new vs old, alternating twice (the better of each pair is kept).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/extract.py, keyphrase_v2.py, report.py

from extract import SHARED, load_seeds, throughput_seeds  # noqa: E402
from report import Aim, Figure, add_json_option, write_json  # noqa: E402

CMMLU_DEV = SHARED / "eval" / "cmmlu" / "data" / "dev"
BATCH = 32
OLD_THROUGHPUT = 41.7
"""keyphrase v2 static + merge, seeds/s, as bench/RESULTS.md measured it before issue 16 (the issue's floor)."""


def cmmlu_dev_seeds():
    from linksyn.common.seeds.rows import cmmlu_csv_seed

    files = sorted(CMMLU_DEV.glob("*.csv"))
    if not files:
        return None
    seeds = []
    for f in files:
        with f.open(newline="", encoding="utf-8") as fh:
            rows = csv.reader(fh)
            next(rows)
            for i, row in enumerate(rows):
                seeds.append(cmmlu_csv_seed(row, subject=f.stem, source=f"cmmlu:{f.name}:{i}"))
    return seeds


class RecordingAnnotator:
    """Keeps each seed's KPs as the annotator gave them (before validation and merging)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.annotator = inner.annotator
        self.raw: dict[str, list[str]] = {}

    def annotate(self, seeds):
        out = self.inner.annotate(seeds)
        for s, o in zip(seeds, out):
            if o.annotation is not None:
                self.raw[s.id] = list(o.annotation.kps)
        return out


def grade_of(seed, taxonomy) -> int:
    label = taxonomy.label_for(seed.subject, seed.source)
    return seed.difficulty or (label.difficulty if label else 0)


def majority(seeds, taxonomy) -> tuple[str, float, float]:
    discs = [taxonomy.label_for(s.subject, s.source).discipline for s in seeds]
    grades = [g for g in (grade_of(s, taxonomy) for s in seeds) if g]
    d, nd = Counter(discs).most_common(1)[0]
    g, ng = Counter(grades).most_common(1)[0] if grades else (0, 0)
    return f"always {d!r} / grade {g}", nd / len(discs), ng / max(1, len(grades))


def measure(name: str, extractor, seeds, taxonomy) -> dict:
    from linksyn.common.kp_form import canonical_form
    from linksyn.common.text import kp_script
    from linksyn.extractor.kp_check import KPValidator

    rec = RecordingAnnotator(extractor.annotator)
    extractor.annotator = rec
    load = os.getloadavg()[0]
    start = time.perf_counter()
    outcomes = []
    for b in range(0, len(seeds), BATCH):
        outcomes += extractor.extract(seeds[b : b + BATCH])
    secs = time.perf_counter() - start
    extractor.annotator = rec.inner
    validator = KPValidator()
    r = Counter()
    junk_reasons = Counter()
    merges: list[tuple[str, str, str]] = []
    for s, o in zip(seeds, outcomes):
        label = taxonomy.label_for(s.subject, s.source)
        grade = grade_of(s, taxonomy)
        r["seeds"] += 1
        if o.annotation is None:
            r["failed"] += 1
            continue
        a = o.annotation
        r["disc_ok"] += a.discipline == label.discipline
        if grade:
            r["graded"] += 1
            r["grade_ok"] += a.difficulty == grade
        text = validator.seed_text(s.question, s.answer)
        for kp in a.kps:
            r["kps"] += 1
            r["grounded"] += text.is_grounded(kp)
            why = validator.reason(kp, text)
            if why:
                r["junk"] += 1
                junk_reasons[why] += 1
            if kp_script(kp) == "zh":
                r["zh_kps"] += 1
                whole = text.is_whole_words(kp)
                if whole is not None:
                    r["zh_in_text"] += 1
                    r["zh_whole"] += whole
        raw = rec.raw.get(s.id, [])
        forms = {canonical_form(k) for k in raw}
        for kp in a.kps:
            if kp not in forms:  # not one of this seed's own forms: a merge onto another KP (or a fallback label)
                if kp not in {label.subdiscipline, label.discipline}:  # not the labelled-subject fallback
                    merges.append((kp_script(kp) or "other", ", ".join(sorted(f for f in forms if f)[:3]), kp))
        r["raw_kps"] += len(raw)
        r["raw_junk"] += sum(bool(validator.reason(k, text)) for k in raw)
    sample = getattr(extractor.canon, "merge_sample", None)
    if sample is not None:  # the merger's own record: (script, form, KP, similarity)
        merges = [(d.script or "other", f"{d.form} (cos {d.similarity:.3f})", d.kp) for d in sample]
        r["merged"] = extractor.canon.merged
    else:  # the old merger keeps none: a final KP that is none of the seed's own forms came from a merge
        r["merged"] = len(merges)
        merges = [(sc, f"one of [{src}]", kp) for sc, src, kp in merges]
    return {"name": name, "secs": secs, "load": load, "r": r, "junk_reasons": junk_reasons, "merges": merges,
            "drops": sum((Counter(o.kp_drops) for o in outcomes), Counter()),
            "errors": Counter((o.error or "")[:90] for o in outcomes if o.annotation is None)}


def share(r: Counter, num: str, den: str) -> float | None:
    return r[num] / r[den] if r[den] else None


def row_text(m: dict) -> str:
    r = m["r"]
    f = lambda x: "-" if x is None else f"{x:.1%}"  # noqa: E731
    return (f"{m['name']:<34} {r['seeds']:>5} {r['seeds'] / m['secs']:>8.2f} {f(share(r, 'disc_ok', 'seeds')):>7} "
            f"{f(share(r, 'grade_ok', 'graded')):>7} {f(share(r, 'grounded', 'kps')):>8} {f(share(r, 'junk', 'kps')):>6} "
            f"{f(share(r, 'zh_whole', 'zh_in_text')):>7} {r['merged']:>6}  load {m['load']:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--en-seeds", type=int, default=400, help="held-out English seeds (MMLU + MATH)")
    ap.add_argument("--zh-seeds", type=int, default=335, help="CMMLU dev seeds (335 = all)")
    ap.add_argument("--llm-seeds", type=int, default=12, help="seeds per language for each LLM row (slow on CPUs)")
    ap.add_argument("--throughput-seeds", type=int, default=2000, help="English seeds for the throughput rows")
    ap.add_argument("--no-llm", action="store_true", help="skip the embedded LLM rows")
    ap.add_argument("--llm", default="llamacpp:embedded",
                    help="model spec of the LLM rows: the packaged SmolLM2 on llama.cpp in-process (default; 7x "
                         "the tokens/s of the hf engine on CPUs, bench/llm.py) or 'embedded' (the hf engine)")
    add_json_option(ap)
    args = ap.parse_args()

    zh = cmmlu_dev_seeds()
    en = load_seeds(args.en_seeds)
    if zh is None or en is None:
        why = f"real seeds not found under {SHARED} (set LINKSYN_SHARED_DATA)"
        print(f"skipped: {why}")
        if args.json:
            write_json(args.json, [Figure.skip("every figure", why)])
        return
    zh = zh[:: max(1, len(zh) // args.zh_seeds)][: args.zh_seeds]  # every k-th: all subjects in a smaller run
    import keyphrase_v2
    from linksyn.common.llm import load_llm
    from linksyn.common.llm.config import LLMConfig
    from linksyn.common.taxonomy import load_taxonomy
    from linksyn.extractor.config import ExtractorConfig
    from linksyn.extractor.embedding import shared_embedder
    from linksyn.extractor.extractor import Extractor
    from linksyn.extractor.segment import shared_segmenter

    taxonomy = load_taxonomy()
    embedder = shared_embedder()
    t0 = time.perf_counter()
    shared_segmenter()
    print(f"jieba segmenter loaded in {time.perf_counter() - t0:.1f} s (once per process); "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", file=sys.stderr)
    cfg = ExtractorConfig(mode="keyphrase", keyphrase_tokens="static", trust_seed_labels=False)

    def new_keyphrase():
        return Extractor.from_config(cfg, embedder=embedder)

    def old_keyphrase():
        return keyphrase_v2.ExtractorV2(
            keyphrase_v2.KeyphraseExtractorV2(embedder, taxonomy, keyphrase_v2.KeyphraseParams(tokens="static"),
                                              trust_seed_labels=False),
            keyphrase_v2.KPCanonV2(embedder.encode, 0.92))

    results: dict[str, list[dict]] = {"zh": [], "en": []}
    for lang, seeds in (("zh", zh), ("en", en)):
        # A fresh extractor per language: KPs merge within one run, as in one pipeline run over these seeds.
        results[lang].append(measure("keyphrase before (v2, static+merge)", old_keyphrase(), seeds, taxonomy))
        results[lang].append(measure("keyphrase now (v3, static+merge)", new_keyphrase(), seeds, taxonomy))
    if not args.no_llm:
        llm = load_llm(args.llm, LLMConfig(batch_size=8))
        try:
            for lang, seeds in (("zh", zh), ("en", en)):
                sample = seeds[:: max(1, len(seeds) // args.llm_seeds)][: args.llm_seeds]
                old_cfg = ExtractorConfig(mode="llm", prompt_version="extract-v1", trust_seed_labels=False)
                old = Extractor.from_config(old_cfg, llm=llm, embedder=embedder)
                old.validator.check = _no_validation  # type: ignore[method-assign]  # as before: no validator
                old.canon = keyphrase_v2.KPCanonV2(embedder.encode, 0.92)  # as before: every KP merged by MiniLM
                results[lang].append(measure(f"llm {llm.model_name} before (v1 prompt)", old, sample, taxonomy))
                new = Extractor.from_config(ExtractorConfig(mode="llm", trust_seed_labels=False), llm=llm,
                                            embedder=embedder)
                results[lang].append(measure(f"llm {llm.model_name} now (v2 prompt)", new, sample, taxonomy))
        finally:
            llm.close()

    figures: list[Figure] = []
    for lang, seeds in (("zh", zh), ("en", en)):
        base_name, base_disc, base_grade = majority(seeds, taxonomy)
        print(f"\n{lang}: {len(seeds)} seeds ({'CMMLU dev' if lang == 'zh' else 'held-out MMLU dev/val + MATH'}); "
              f"majority baseline {base_name}: discipline {base_disc:.1%}, grade {base_grade:.1%}")
        print(f"{'annotator':<34} {'seeds':>5} {'seeds/s':>8} {'disc':>7} {'grade':>7} {'grounded':>8} {'junk':>6} "
              f"{'zh word':>7} {'merges':>6}")
        for m in results[lang]:
            print(row_text(m))
            r = m["r"]
            note = (f"{r['seeds']} seeds, {r['kps']} KPs, {r['failed']} failed; load {m['load']:.1f}; "
                    f"validator drops {dict(m['drops'])}")
            is_new_kp = m["name"].startswith("keyphrase now")
            tag = f"{lang}, {m['name']}"
            figures += [
                Figure(f"{tag}: discipline agreement", share(r, "disc_ok", "seeds"), "share", "majority class",
                       base_disc, aim=Aim(">", base_disc) if is_new_kp else None, note=note),
                Figure(f"{tag}: grade agreement (exact)", share(r, "grade_ok", "graded"), "share", "majority grade",
                       base_grade, note=f"{r['graded']} seeds with an implied grade"),
                Figure(f"{tag}: grounded share", share(r, "grounded", "kps"), "share",
                       aim=Aim(">=", 0.99) if is_new_kp else None),
                Figure(f"{tag}: junk-KP share", share(r, "junk", "kps"), "share",
                       aim=Aim("<=", 0.0) if " now " in m["name"] else None,
                       note=f"by reason {dict(m['junk_reasons'])}; before the validator "
                            f"{r['raw_junk']}/{r['raw_kps']} of the annotator's own KPs"),
                Figure(f"{tag}: seeds/s", r["seeds"] / m["secs"], "seeds/s"),
                Figure(f"{tag}: merge decisions", float(r["merged"]), "merges",
                       note=f"sampled by script {dict(Counter(x[0] for x in m['merges']))}; e.g. " + "; ".join(
                           f"{src} -> {kp!r}" for _, src, kp in m["merges"][:3])),
            ]
            if lang == "zh":
                figures.append(Figure(f"{tag}: Chinese KPs that are whole words", share(r, "zh_whole", "zh_in_text"),
                                      "share", aim=Aim(">=", 0.95) if " now " in m["name"] else None,
                                      note=f"of {r['zh_in_text']} Chinese KPs found in their seed's text "
                                           f"({r['zh_kps']} Chinese KPs in all)"))
            for e, k in m["errors"].most_common(2):
                print(f"    {k} x failed: {e}", file=sys.stderr)
            for script, form, kp in m["merges"][:: max(1, len(m["merges"]) // 6)][:6]:
                print(f"    merge ({script}): {form!r} -> {kp!r}")

    # Throughput: new vs old keyphrase extraction, static tokens + merging, English mix, labels trusted.
    many = throughput_seeds(args.throughput_seeds)
    trusted = cfg.model_copy(update={"trust_seed_labels": True})
    speed: dict[str, list[float]] = {"old": [], "new": []}
    old_keyphrase().extract(many[:256])  # warm the static token table for both (the same embedder)
    for _ in range(2):
        for which in ("old", "new"):
            if which == "new":
                ex = Extractor.from_config(trusted, embedder=embedder)
            else:
                ex = keyphrase_v2.ExtractorV2(
                    keyphrase_v2.KeyphraseExtractorV2(embedder, taxonomy, keyphrase_v2.KeyphraseParams(tokens="static")),
                    keyphrase_v2.KPCanonV2(embedder.encode, 0.92))
            start = time.perf_counter()
            for b in range(0, len(many), 256):
                ex.extract(many[b : b + 256])
            speed[which].append(len(many) / (time.perf_counter() - start))
    new_best, old_best = max(speed["new"]), max(speed["old"])
    print(f"\nthroughput, {len(many)} English seeds, static + merge: now {new_best:.1f} seeds/s, before "
          f"{old_best:.1f} seeds/s (runs {speed}), ratio {new_best / old_best:.2f}; load {os.getloadavg()[0]:.1f}")
    figures.append(Figure("throughput, keyphrase now (v3, static+merge): seeds/s", new_best, "seeds/s",
                          "keyphrase before (v2, static+merge), this process", old_best, aim=Aim(">=", OLD_THROUGHPUT),
                          note=f"{len(many)} real English seeds, batches of 256, best of 2 alternating runs each; "
                               f"aim: bench/RESULTS.md's 41.7 seeds/s of v2 before issue 16"))
    if args.json:
        notes = [f"zh: {len(zh)} CMMLU dev seeds; en: {len(en)} held-out MMLU dev/val + MATH seeds; labels not "
                 "trusted", "LLM rows: " + ("skipped (--no-llm)" if args.no_llm else
                                             f"packaged SmolLM2-135M in-process ({args.llm}), "
                                             f"{args.llm_seeds} seeds per language (every k-th seed)")]
        write_json(args.json, figures, notes)


def _no_validation(kps, text):
    from linksyn.extractor.kp_check import CheckedKPs

    return CheckedKPs(list(kps), [], 0)


if __name__ == "__main__":
    main()
