"""The report's figures, computed from its sources (pure: no I/O beyond the sources' own reads).

Each figure is plain numbers with labels; linksyn.report.page draws them. Where a figure comes from:
- funnel: report.json's counts (seeds read, annotated, paths, synthesized) and the stages' totals (rows kept), drops
  by reason from the stages' `drop:` totals and the rejected rows, dead letters by service and error; for a cluster
  (no report.json) the graph's seeds and the dataset's rows, and the sink's drops from its manifests;
- shares: the sampler's target and realised shares (report.json), the dataset's shares (manifests or rows); without
  a run, the target is the graph's natural mix (each class's share of seed attachments, the sampler's default);
- graph: the latest snapshot (size, degree distribution in power-of-two bins, the most popular KPs);
- cost: each stage's wall time and totals (keys ending in `_tokens`, keys starting with `cost`) and its models
  (from its details), and tokens per model of the kept rows;
- sample: a few kept rows (stratified by language) with their seeds looked up in the graph by id;
- probes: the latest probe per discipline x grade and its change from the one before.

Sizes are bounded whatever the run's size (SampleSizes): that is what keeps a report of a large graph small.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from linksyn.common.charts import Bar
from linksyn.common.grades import GRADE_KEYS, GRADE_NAMES
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.report.coverage import CoverageCurves, coverage_curves
from linksyn.report.sources import ReportSources
from linksyn.report.summary import cost_totals, drops, stage_lines, token_totals

MODEL_DETAILS = ("annotator", "generator", "refiner", "model")
"""Keys of a stage's details that name a model it used."""
DEFAULT_PATHS_PER_SEED = 2
"""Paths the coverage curves are drawn to when no run says how many it emitted (`linksyn run`'s default)."""


@dataclass(frozen=True)
class SampleSizes:
    """How much of a large run the report shows (what keeps its size bounded)."""

    qa: int = 12
    """Kept QA shown with their lineage."""
    top_kps: int = 25
    """Most popular KPs listed."""
    losses: int = 30
    """Drop and dead-letter reasons listed (the largest)."""
    seed_chars: int = 400
    """Seed and QA texts are cut to this many characters."""
    coverage_points: int = 40
    """Points per coverage curve."""
    lang_seeds: int = 10_000
    """Seeds whose language is detected for the language mix (evenly spread over the graph's seeds)."""


# ---- figures ----------------------------------------------------------------------------------------------------


@dataclass
class Funnel:
    steps: list[Bar]
    losses: list[Bar]
    losses_total: int = 0
    """All drops and dead letters (losses lists at most SampleSizes.losses reasons)."""


@dataclass
class Shares:
    attribute: str
    labels: list[str]
    series: dict[str, list[float | None]]
    """Series name (target, realised, dataset) -> share per label."""
    note: str = ""


@dataclass
class LanguageExample:
    lang: str
    question: str


@dataclass
class GraphFigures:
    version: int
    n_kps: int
    n_edges: int
    n_seeds: int
    components: int | None
    degree_bins: list[Bar]
    top_kps: list[Bar]


@dataclass
class StageCost:
    stage: str
    status: str
    models: list[str]
    wall_s: float | None
    build_s: float | None
    tokens: dict[str, float]
    costs: dict[str, float]


@dataclass
class SeedView:
    id: str
    question: str
    answer: str
    kps: list[str]
    found: bool = True


@dataclass
class QAView:
    row: dict[str, Any]
    seeds: list[SeedView]
    path_kps: list[str]
    path_kps_derived: bool
    """True when the row has no path_kps (an older dataset): the KPs consecutive seeds share, from the graph."""


@dataclass
class ProbeRow:
    discipline: str
    grade: int
    n: int
    latest: float
    previous: float | None

    @property
    def change(self) -> float | None:
        return None if self.previous is None else self.latest - self.previous


@dataclass
class ProbeFigures:
    latest: str
    previous: str | None
    rows: list[ProbeRow]


@dataclass
class Figures:
    title: str
    kind: str
    """'run' (a report.json was found) or 'outputs' (a dataset and/or graph store only)."""
    status: str
    stage_lines: list[str]
    facts: list[tuple[str, str]]
    funnel: Funnel
    shares: list[Shares]
    coverage: CoverageCurves | None
    realised_coverage: tuple[int, float] | None
    graph: GraphFigures | None
    costs: list[StageCost]
    model_tokens: list[tuple[str, int, int, int]]
    """(model, kept rows, prompt tokens, completion tokens) of the dataset."""
    sample: list[QAView]
    sample_of: int
    probes: ProbeFigures | None
    languages: Shares | None = None
    language_examples: list[LanguageExample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sampled: list[str] = field(default_factory=list)
    """What was sampled or cut to keep the page small."""


def grade_label(key: str | int) -> str:
    """"3" -> "3 high school"."""
    try:
        return f"{int(key)} {GRADE_NAMES[int(key)]}"
    except (KeyError, ValueError):
        return str(key)


def _shares(counts: Mapping[str, float]) -> dict[str, float]:
    total = float(sum(counts.values()))
    return {k: v / total for k, v in counts.items()} if total > 0 else {}


# ---- each figure ------------------------------------------------------------------------------------------------


def _losses(src: ReportSources, totals_by_stage: Mapping[str, Mapping[str, Any]]) -> list[Bar]:
    out: list[Bar] = []
    run = src.run or {}
    rejected = run.get("seeds_rejected", {})
    if rejected.get("count"):
        reasons = Counter(r.get("reason", "?").split(":", 1)[0] for r in rejected.get("rows", []))
        unlisted = rejected["count"] - sum(reasons.values())
        if unlisted > 0:
            reasons["(not listed)"] += unlisted
        out += [Bar(f"seed rows rejected: {k}", v) for k, v in reasons.items()]
    for stage, totals in totals_by_stage.items():
        out += [Bar(f"{stage} dropped: {'contaminated (leak)' if k == 'contaminated' else k}", v)
                for k, v in drops(totals).items()]
    short = run.get("stages", {}).get("sampler", {}).get("details", {}).get("link_paths_short", {})
    if short.get("dropped"):  # walks whose seeds shared too few KPs to make a link path (Sampler.link_stats)
        out.append(Bar("sampler dropped: link path too short", short["dropped"]))
    dead = run.get("dead_letters", {})
    if dead.get("count"):
        records = dead.get("records", [])
        if len(records) == dead["count"]:
            pairs = Counter((r.get("service", "?"), r.get("error", "?").split(":", 1)[0]) for r in records)
            out += [Bar(f"{s} dead-lettered: {e}", v) for (s, e), v in pairs.items()]
        else:
            out += [Bar(f"{s} dead-lettered", v) for s, v in dead.get("by_service", {}).items()]
    return sorted(out, key=lambda b: (-b.value, b.label))


def funnel(src: ReportSources, dataset_records: int | None, sizes: SampleSizes) -> Funnel:
    run = src.run
    stages = (run or {}).get("stages", {})
    totals_by_stage = {n: s.get("totals", {}) for n, s in stages.items() if s.get("totals")}
    steps: list[Bar] = []
    if run is not None:
        rejected = run.get("seeds_rejected", {}).get("count", 0)
        steps.append(Bar("seed rows read", run.get("seeds_in", 0) + rejected))
        steps.append(Bar("seeds in", run.get("seeds_in", 0)))
        steps.append(Bar("annotated", run.get("annotated", 0)))
        graph_seeds = stages.get("graph", {}).get("details", {}).get("seeds")
        if graph_seeds is not None:
            steps.append(Bar("seeds in the graph", graph_seeds))
        steps.append(Bar("paths", run.get("paths", 0)))
        steps.append(Bar("QA synthesized", run.get("synthesized", 0)))
        kept = stages.get("sink", {}).get("totals", {}).get("kept", dataset_records)
        if kept is not None:
            steps.append(Bar("rows kept", kept))
    else:
        if src.graph is not None:
            steps.append(Bar("seeds in the graph", src.graph.n_seeds))
        if dataset_records is not None:
            steps.append(Bar("rows kept", dataset_records))
        if src.dataset is not None and src.dataset.manifests:
            dropped = src.dataset.totals().dropped
            totals_by_stage = {"sink": {f"drop:{k}": v for k, v in dropped.items()}}
    losses = _losses(src, totals_by_stage)
    return Funnel(steps, losses[: sizes.losses], int(sum(b.value for b in losses)))


def _natural(snap: GraphSnapshot) -> tuple[dict[str, float], dict[str, float]]:
    """Each class's share of seed attachments (KP popularity), by discipline and by modal grade: the sampler's
    'natural' default targets."""
    pop = snap.kp_popularity.astype(np.float64)
    disc = snap.kp_discipline.astype(np.int64)
    d = np.bincount(disc[disc >= 0], weights=pop[disc >= 0], minlength=len(snap.disciplines))
    grade = snap.kp_difficulty().astype(np.int64)
    g = np.bincount(grade[grade > 0] - 1, weights=pop[grade > 0], minlength=len(GRADE_KEYS))
    return (_shares({name: float(v) for name, v in zip(snap.disciplines, d) if v > 0}),
            _shares({key: float(v) for key, v in zip(GRADE_KEYS, g) if v > 0}))


def shares(src: ReportSources, dataset_totals: Any) -> list[Shares]:
    sampler = ((src.run or {}).get("stages", {}).get("sampler", {}) or {}).get("details", {})
    out = []
    natural = _natural(src.graph) if src.graph is not None else ({}, {})
    for i, (attribute, key, counts_of) in enumerate((
        ("discipline", "discipline", "disciplines"),
        ("difficulty grade", "difficulty", "difficulty"),
    )):
        series: dict[str, dict[str, float]] = {}
        note = ""
        if sampler.get(key, {}).get("target"):
            series["target"] = sampler[key]["target"]
            series["realised (paths)"] = sampler[key].get("realised", {})
        elif natural[i]:
            series["target (natural mix)"] = natural[i]
            note = "no sampler figures (no run report): the target shown is the graph's natural mix, the sampler's default"
        if dataset_totals is not None and dataset_totals.records:
            series["dataset (rows kept)"] = _shares(getattr(dataset_totals, counts_of))
        keys = sorted({k for s in series.values() for k in s},
                      key=(lambda k: (-max(s.get(k, 0.0) for s in series.values()), k)) if key == "discipline"
                      else (lambda k: (not k.isdigit(), k)))
        labels = [grade_label(k) if key == "difficulty" else k for k in keys]
        out.append(Shares(attribute, labels, {n: [s.get(k, 0.0) for k in keys] for n, s in series.items()}, note))
    return out


def languages(src: ReportSources, dataset_totals: Any, sizes: SampleSizes) -> tuple[Shares | None, list[LanguageExample]]:
    """Languages of the seeds (detected on up to sizes.lang_seeds of the graph's seeds, evenly spread) and of the
    rows kept, with one seed question of each language."""
    from linksyn.common.text import cjk_share, detect_lang

    series: dict[str, dict[str, float]] = {}
    examples: dict[str, tuple[float, str]] = {}  # lang -> (how mixed, question): the least mixed one is shown
    note = ""
    snap = src.graph
    if snap is not None and snap.n_seeds:
        step = max(1, snap.n_seeds // sizes.lang_seeds)
        counts: Counter[str] = Counter()
        for i in range(0, snap.n_seeds, step):
            question = snap.seed_question[i]
            lang = detect_lang(question)
            counts[lang] += 1
            share = cjk_share(question)
            mixed = 1.0 - share if lang == "zh" else share
            if lang not in examples or mixed < examples[lang][0]:
                examples[lang] = (mixed, question)
        series["seeds (graph)"] = _shares(counts)
        if step > 1:
            note = f"seed languages detected on {sum(counts.values()):,} of {snap.n_seeds:,} seeds (every {step}th)"
    if dataset_totals is not None and dataset_totals.records:
        series["dataset (rows kept)"] = _shares(dataset_totals.langs)
    if not series:
        return None, []
    keys = sorted({k for v in series.values() for k in v}, key=lambda k: (-max(v.get(k, 0.0) for v in series.values()), k))
    shares_ = Shares("language", keys, {n: [v.get(k, 0.0) for k in keys] for n, v in series.items()}, note)
    return shares_, [LanguageExample(k, _cut(q, sizes.seed_chars)) for k, (_, q) in sorted(examples.items())]


def graph_figures(snap: GraphSnapshot, components: int | None, sizes: SampleSizes) -> GraphFigures:
    degree = np.diff(snap.indptr)
    bins: list[Bar] = []
    isolated = int((degree == 0).sum())
    if isolated:
        bins.append(Bar("0", isolated))
    top = int(degree.max()) if len(degree) else 0
    lo = 1
    while lo <= top:
        hi = 2 * lo - 1
        bins.append(Bar(str(lo) if lo == hi else f"{lo}–{hi}", int(((degree >= lo) & (degree <= hi)).sum())))
        lo *= 2
    order = np.argsort(-snap.kp_popularity, kind="stable")[: sizes.top_kps]
    tops = []
    for i in order:
        i = int(i)
        d = int(snap.kp_discipline[i])
        label = snap.kp_text[i] + (f" ({snap.disciplines[d]})" if 0 <= d < len(snap.disciplines) else "")
        pop = int(snap.kp_popularity[i])
        links = int(degree[i])
        tops.append(Bar(label, pop, f"{pop:,} seed{'' if pop == 1 else 's'} · {links:,} link{'' if links == 1 else 's'}"))
    return GraphFigures(snap.version, snap.n_kps, snap.n_edges, snap.n_seeds, components, bins, tops)


def stage_costs(run: Mapping[str, Any]) -> list[StageCost]:
    out = []
    stages = run.get("stages", {})
    for name in run.get("stages_selected", stages):
        s = stages.get(name)
        if not s:
            continue
        details = s.get("details", {})
        models = [str(details[k]) for k in MODEL_DETAILS if details.get(k)]
        totals = s.get("totals", {})
        out.append(StageCost(name, s.get("status", "?"), models, s.get("wall_s"), s.get("build_s"),
                             token_totals(totals), cost_totals(totals)))
    return out


def model_tokens(src: ReportSources) -> list[tuple[str, int, int, int]]:
    if src.dataset is None or not src.dataset.shards:
        return []
    table = src.dataset.table(["model", "prompt_tokens", "completion_tokens"])
    if table.num_rows == 0 or "model" not in table.column_names:
        return []
    grouped = table.group_by("model").aggregate(
        [("model", "count"), ("prompt_tokens", "sum"), ("completion_tokens", "sum")]
    ).to_pylist()
    rows = [(g["model"] or "unknown", int(g["model_count"]), int(g["prompt_tokens_sum"] or 0),
             int(g["completion_tokens_sum"] or 0)) for g in grouped]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def sample_qa(src: ReportSources, sizes: SampleSizes, rng_seed: int = 0) -> tuple[list[QAView], int]:
    """Up to sizes.qa kept rows, stratified by language (each language present gets its share, at least a few),
    with their seeds from the graph. Returns (views, rows in the dataset)."""
    ds = src.dataset
    if ds is None or not ds.shards:
        return [], 0
    langs = ds.table(["lang"])
    n = langs.num_rows
    if n == 0:
        return [], 0
    by_lang: dict[str, list[int]] = {}
    for i, lang in enumerate(langs.column("lang").to_pylist() if "lang" in langs.column_names else [""] * n):
        by_lang.setdefault(lang or "unknown", []).append(i)
    rng = random.Random(rng_seed)
    # Each language its share of the sample, at least a few (so a minority language is seen), the rest by size.
    quota = {lang: min(len(idx), max(min(3, sizes.qa), round(sizes.qa * len(idx) / n))) for lang, idx in by_lang.items()}
    while sum(quota.values()) > sizes.qa:
        largest = max(quota, key=lambda k: quota[k])
        quota[largest] -= 1
    while sum(quota.values()) < min(sizes.qa, n):
        room = [k for k in quota if quota[k] < len(by_lang[k])]
        quota[max(room, key=lambda k: len(by_lang[k]) - quota[k])] += 1
    picked = [i for lang in sorted(by_lang, key=lambda k: (-len(by_lang[k]), k))
              for i in sorted(rng.sample(by_lang[lang], quota[lang]))]
    rows = ds.rows(picked)
    snap = src.graph
    index: dict[str, int] = {}
    if snap is not None:
        wanted = {sid for r in rows for sid in r.get("source_seed_ids") or []}
        for i, sid in enumerate(snap.seed_ids.to_list()):
            if sid in wanted:
                index[sid] = i
    views = []
    for r in rows:
        seeds = []
        for sid in r.get("source_seed_ids") or []:
            i = index.get(sid)
            if i is None or snap is None:
                seeds.append(SeedView(sid, "", "", [], found=False))
                continue
            kps = snap.seed_kp_indices[snap.seed_kp_indptr[i]: snap.seed_kp_indptr[i + 1]]
            seeds.append(SeedView(sid, _cut(snap.seed_question[i], sizes.seed_chars),
                                  _cut(snap.seed_answer[i], sizes.seed_chars), [snap.kp_text[int(k)] for k in kps]))
        path_kps = list(r.get("path_kps") or [])
        derived = False
        if not path_kps and len(seeds) > 1 and all(s.found for s in seeds):
            # Consecutive seeds of a path share a KP of the walk: the shared ones are (part of) the path.
            derived = True
            for a, b in zip(seeds, seeds[1:]):
                path_kps += [k for k in a.kps if k in b.kps and k not in path_kps]
        for key in ("question", "answer", "rationale"):
            if isinstance(r.get(key), str):
                r[key] = _cut(r[key], 2 * sizes.seed_chars)
        views.append(QAView(r, seeds, path_kps, derived))
    return views, n


def probe_figures(src: ReportSources) -> ProbeFigures | None:
    if not src.probes:
        return None
    latest = src.probes[-1]
    previous = src.probes[-2] if len(src.probes) > 1 else None
    keys = sorted(set(latest.buckets) | (set(previous.buckets) if previous else set()))
    rows = []
    for key in keys:
        n, acc = latest.buckets.get(key, (0, float("nan")))
        before = previous.buckets.get(key) if previous else None
        if key not in latest.buckets:
            continue
        rows.append(ProbeRow(key[0], key[1], n, acc, before[1] if before else None))
    return ProbeFigures(latest.name, previous.name if previous else None, rows)


# ---- all of them ------------------------------------------------------------------------------------------------


def _sampler_walk(run: Mapping[str, Any] | None) -> tuple[dict[str, Any], tuple[dict, dict] | None, int | None,
                                                         tuple[int, float] | None]:
    """From a run's sampler details: walk params (with its random seed as `rng_seed`), targets, paths emitted,
    (paths, KP coverage) realised."""
    d = ((run or {}).get("stages", {}).get("sampler", {}) or {}).get("details", {})
    params = dict(d.get("params", {}))
    if "rng_seed" in d:
        params["rng_seed"] = d["rng_seed"]
    targets = None
    if d.get("discipline", {}).get("target") or d.get("difficulty", {}).get("target"):
        targets = (d.get("discipline", {}).get("target", {}), d.get("difficulty", {}).get("target", {}))
    emitted = d.get("paths_emitted")
    realised = (int(emitted), float(d["kp_coverage"])) if emitted and "kp_coverage" in d else None
    return params, targets, emitted, realised


def compute(src: ReportSources, sizes: SampleSizes = SampleSizes(), rng_seed: int = 0) -> Figures:
    run = src.run
    notes = list(src.notes)
    if run is None:
        notes.insert(0, "no report.json: these are a deployment's outputs (dataset folder, graph store); the paths, "
                        "QA synthesized, stage times and tokens, and the sampler's realised shares are recorded by "
                        "`linksyn run` only")
    sampled = []
    dataset_totals = src.dataset.totals() if src.dataset is not None else None
    facts: list[tuple[str, str]] = []
    if run is not None:
        facts.append(("run", f"{src.run_dir} ({run.get('status', '?')}, {run.get('wall_s', 0):.1f} s)"))
        files = run.get("seed_sources", [])
        given = run.get("seed_paths") or [f["path"] for f in files]
        if given:
            formats = Counter(f["format"] for f in files)
            shown = ", ".join(given[:10]) + (f" and {len(given) - 10} more" if len(given) > 10 else "")
            facts.append(("seeds", f"{shown} ({len(files):,} files: "
                                   + ", ".join(f"{fmt} {n:,}" for fmt, n in formats.most_common()) + ")"))
        if run.get("stages_not_available"):
            facts.append(("not available in this build", ", ".join(run["stages_not_available"])))
        if run.get("error"):
            facts.append(("error", str(run["error"])))
    if src.graph_url:
        facts.append(("graph store", f"{src.graph_url}" + (f" (snapshot v{src.graph.version})" if src.graph else "")))
    if src.dataset is not None:
        facts.append(("dataset", src.dataset.url + ("" if src.dataset.manifests else
                                                    " (no sink manifest found: drops unknown)")))
    graph = None
    if src.graph is not None:
        components = ((run or {}).get("stages", {}).get("graph", {}) or {}).get("details", {}).get("components")
        graph = graph_figures(src.graph, components, sizes)
        if graph.n_kps > sizes.top_kps:
            sampled.append(f"the {sizes.top_kps} most popular of {graph.n_kps:,} knowledge points are listed")
    params, targets, emitted, realised = _sampler_walk(run)
    coverage = None
    if src.graph is not None:
        n_paths = emitted or (len(set(src.dataset.table(["path_id"]).column("path_id").to_pylist()))
                              if src.dataset is not None and src.dataset.shards else 0)
        if not n_paths:
            n_paths = DEFAULT_PATHS_PER_SEED * src.graph.n_seeds
        walk = {k: v for k, v in params.items() if k != "rng_seed"}
        coverage = coverage_curves(src.graph, n_paths, walk, targets, rng_seed=int(params.get("rng_seed", rng_seed)),
                                   points=sizes.coverage_points)
        if coverage.note:
            notes.append(f"coverage: {coverage.note}")
        sampled.append(f"coverage curves have {sizes.coverage_points} points each")
    sample, sample_of = sample_qa(src, sizes, rng_seed)
    if sample_of > len(sample):
        sampled.append(f"{len(sample)} of {sample_of:,} kept QA are shown (stratified by language); long texts are cut "
                       f"at {2 * sizes.seed_chars} characters, seeds at {sizes.seed_chars}")
    langs, lang_examples = languages(src, dataset_totals, sizes)
    fun = funnel(src, dataset_totals.records if dataset_totals is not None else None, sizes)
    if len(fun.losses) >= sizes.losses:
        sampled.append(f"the {sizes.losses} largest drop and dead-letter reasons are listed")
    return Figures(
        title=src.title,
        kind="run" if run is not None else "outputs",
        status=(run or {}).get("status", ""),
        stage_lines=stage_lines(run) if run is not None else [],
        facts=facts,
        funnel=fun,
        shares=shares(src, dataset_totals),
        coverage=coverage,
        realised_coverage=realised,
        graph=graph,
        costs=stage_costs(run) if run is not None else [],
        model_tokens=model_tokens(src),
        sample=sample,
        sample_of=sample_of,
        probes=probe_figures(src),
        languages=langs,
        language_examples=lang_examples,
        notes=notes,
        sampled=sampled,
    )

