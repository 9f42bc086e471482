"""Fit the keyphrase extractor's difficulty model (services/extractor/difficulty_<tokens>.json) from real seeds.

    .venv/bin/python scripts/fit_difficulty.py [--tokens contextual static] [--max-tokens 256]

Data: every labelled seed in ../shared/data (LINKSYN_SHARED_DATA): MMLU dev + val questions whose subject implies a
level (elementary_ 2, high_school_ 3, college_ 4, professional_ 5; taxonomy.yaml) and the MATH problems with their
Level 1-5. Nothing is copied: the script reads the files, embeds the seeds with MiniLM exactly as the keyphrase
extractor does (question + answer, the same token mode and truncation) and writes only the fitted weights.
Split: `linksyn.extractor.difficulty.is_held_out(seed id)` puts a fifth of the seeds aside; the model is fitted on
the rest (regularisation chosen by 5-fold cross-validation inside the fitting side) and its accuracy on the held-out
fifth is printed and stored in the file's `info`. bench/extract.py evaluates on held-out seeds only.
Needs scikit-learn (fitting only; the extractor itself uses numpy).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LINKSYN_SHARED_DATA", REPO.parent / "shared" / "data"))


def labelled_seeds(taxonomy):
    """(seed, level) for every MMLU dev/val and MATH seed whose labels imply a level; None when the data is absent."""
    from linksyn.common.seeds.rows import math_seed, mmlu_csv_seed, mmlu_subject

    mmlu_files = sorted((SHARED / "seeds" / "mmlu" / "dev").glob("*.csv")) + sorted(
        (SHARED / "seeds" / "mmlu" / "val").glob("*.csv"))
    math_file = SHARED / "seeds" / "math" / "math_1000.jsonl"
    if not mmlu_files or not math_file.is_file():
        return None
    seeds = []
    for f in mmlu_files:
        subject = mmlu_subject(f.stem)
        with f.open(newline="", encoding="utf-8") as fh:
            seeds += [mmlu_csv_seed(row, subject=subject, source=f"mmlu:{f.name}:{i}")
                      for i, row in enumerate(csv.reader(fh))]
    seeds += [math_seed(json.loads(line), f"math:{math_file.name}:{i}")
              for i, line in enumerate(math_file.read_text(encoding="utf-8").splitlines())]
    out = []
    for s in seeds:
        label = taxonomy.label_for(s.subject, s.source)
        level = s.difficulty or (label.difficulty if label else 0)
        if level:
            out.append((s, level))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", nargs="+", default=["static", "contextual"], choices=["static", "contextual"])
    ap.add_argument("--max-tokens", type=int, default=256, help="as extractor.keyphrase_max_tokens")
    args = ap.parse_args()

    from linksyn.common.taxonomy import load_taxonomy
    from linksyn.extractor.difficulty import (
        DifficultyModel,
        is_held_out,
        model_path,
        surface_features,
    )
    from linksyn.extractor.embedding import shared_embedder
    from linksyn.extractor.keyphrase import seed_text
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    data = labelled_seeds(load_taxonomy())
    if data is None:
        print(f"skipped: labelled seeds not found under {SHARED} (set LINKSYN_SHARED_DATA)")
        sys.exit(1)
    seeds = [s for s, _ in data]
    y = np.array([lv for _, lv in data])
    test = np.array([is_held_out(s.id) for s in seeds])
    embedder = shared_embedder()
    for tokens in args.tokens:
        print(f"[{tokens}] embedding {len(seeds)} labelled seeds ...", flush=True)
        doc = embedder.flat_tokens([seed_text(s) for s in seeds], tokens, max_tokens=args.max_tokens).pooled()
        x = np.concatenate([doc, surface_features([s.question for s in seeds], [s.answer for s in seeds])], axis=1)
        mean, std = x[~test].mean(axis=0), x[~test].std(axis=0) + 1e-6
        z = (x - mean) / std
        best_c, best_cv = None, -1.0
        for c in (0.003, 0.01, 0.03, 0.1, 0.3):
            cv = cross_val_score(LogisticRegression(C=c, max_iter=3000), z[~test], y[~test], cv=5).mean()
            print(f"  C={c}: 5-fold CV accuracy on the fitting side {cv:.3f}", flush=True)
            if cv > best_cv:
                best_c, best_cv = c, cv
        clf = LogisticRegression(C=best_c, max_iter=3000).fit(z[~test], y[~test])
        pred = clf.predict(z[test])
        majority = Counter(y[~test].tolist()).most_common(1)[0][0]
        info = {
            "fitted_by": "scripts/fit_difficulty.py", "tokens": tokens, "max_tokens": args.max_tokens,
            "data": "MMLU dev+val (level from subject prefix) and MATH math_1000 (Level 1-5), ../shared/data",
            "split": "is_held_out(seed id): sha256(id) % 5 == 0 held out",
            "n_fit": int((~test).sum()), "n_held_out": int(test.sum()), "C": best_c, "cv_accuracy": round(best_cv, 4),
            "held_out_exact": round(float((pred == y[test]).mean()), 4),
            "held_out_within_1": round(float((np.abs(pred - y[test]) <= 1).mean()), 4),
            "held_out_majority_exact": round(float((y[test] == majority).mean()), 4),
            "held_out_majority_within_1": round(float((np.abs(y[test] - majority) <= 1).mean()), 4),
            "label_counts_fit": {str(k): v for k, v in sorted(Counter(y[~test].tolist()).items())},
        }
        model = DifficultyModel(clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32),
                                mean.astype(np.float32), std.astype(np.float32),
                                tuple(int(c) for c in clf.classes_), info)
        path = model_path(tokens)
        path.write_text(model.to_json(), encoding="utf-8")
        print(f"[{tokens}] wrote {path} ({path.stat().st_size / 1024:.0f} KB): {json.dumps(info)}", flush=True)


if __name__ == "__main__":
    main()
