"""The dataset card (README.md) and its plots from the sink's running totals (pure).

The YAML header's `configs` tell `datasets.load_dataset(DIR)` which files make the train split: the shards of the
first configured format. (datasets picks one file reader per repository, so the other formats' shards, holding the
same records, are listed in the card body for readers of their own, e.g. `load_dataset("json", data_files=...)`.)
The plots are SVG files beside the card (plots/), referenced by relative links, so the dataset's page on the Hugging
Face Hub shows them; every figure is also in the card's tables.
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

import yaml
from linksyn.common.charts import Axis, Bar, bar_chart
from linksyn.common.dataset import PLOTS_DIR, DatasetTotals, shard_glob
from linksyn.common.grades import GRADE_NAMES
from linksyn.common.spend.ledger import Spend
from linksyn.sink.store import ROW_SCHEMA

__all__ = ["DatasetTotals", "card_plots", "render_card"]


def _table(title: str, counts: Counter, key_sort: bool = False) -> str:
    if not counts:
        return f"### {title}\n\n(none)\n"
    items = sorted(counts.items()) if key_sort else counts.most_common()
    total = sum(counts.values())
    lines = [f"### {title}", "", "| value | records | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {v} | {v / total:.1%} |" for k, v in items]
    return "\n".join(lines) + "\n"


def _share_bars(counts: Counter, key_sort: bool = False) -> list[Bar]:
    total = sum(counts.values()) or 1
    items = sorted(counts.items()) if key_sort else counts.most_common()
    return [Bar(k, v / total, f"{v / total:.1%} ({v:,})") for k, v in items]


def card_plots(totals: DatasetTotals) -> dict[str, tuple[str, str]]:
    """The card's plots: file name -> (caption, SVG text). Shares of records by discipline and by difficulty grade,
    and the records dropped by reason (when any were)."""
    grades = Counter({f"{k} {GRADE_NAMES.get(int(k), '')}".strip() if k.isdigit() else k: v
                      for k, v in totals.difficulty.items()})
    plots = {
        "disciplines.svg": ("Records by discipline", bar_chart("disciplines", "Records by discipline",
                                                               _share_bars(totals.disciplines), Axis(percent=True))),
        "difficulty.svg": ("Records by difficulty grade", bar_chart("difficulty", "Records by difficulty grade",
                                                                    _share_bars(grades, key_sort=True),
                                                                    Axis(percent=True))),
    }
    if totals.dropped:
        plots["dropped.svg"] = ("Records dropped by reason", bar_chart(
            "dropped", "Records dropped by reason", [Bar(k, v) for k, v in totals.dropped.most_common()]))
    return plots


def _spend_table(spend: Mapping[tuple[str, str], Spend], currency: str, records: int) -> str:
    if not spend:
        return "## LLM spend\n\n(no usage reports seen)\n"
    lines = ["## LLM spend", "",
             "Every request of the run by every replica (failed and filtered ones too), from the usage reports.", "",
             f"| service | model | requests | prompt tokens | completion tokens | cost ({currency}) |",
             "|---|---|---:|---:|---:|---:|"]
    total = Spend()
    for (service, model), s in sorted(spend.items()):
        lines.append(
            f"| {service} | {model} | {s.requests} | {s.prompt_tokens} | {s.completion_tokens} | {s.cost:.4f} |"
        )
        total.requests += s.requests
        total.prompt_tokens += s.prompt_tokens
        total.completion_tokens += s.completion_tokens
        total.cost += s.cost
    lines.append(f"| all | | {total.requests} | {total.prompt_tokens} | {total.completion_tokens} | {total.cost:.4f} |")
    if records:
        lines += ["", f"Per kept record: {total.tokens / records:.0f} tokens, {total.cost / records:.6f} {currency}."]
    return "\n".join(lines) + "\n"


def render_card(
    totals: DatasetTotals, formats: Sequence[str], name: str, plots: Sequence[tuple[str, str]] = (),
    spend: Mapping[tuple[str, str], Spend] | None = None, currency: str = "USD",
) -> str:
    """README.md text: YAML header (configs, data_files), the plots (file name under plots/, caption), the
    statistics; with `spend` ((service, model) -> Spend of the run) the LLM spend too."""
    globs = {fmt: shard_glob(fmt) for fmt in formats}
    configs = [{"config_name": "default", "data_files": [{"split": "train", "path": globs[formats[0]]}]}]
    header = yaml.safe_dump({"configs": configs, "task_categories": ["question-answering"]}, sort_keys=False)
    columns = ", ".join(f"`{n}`" for n in ROW_SCHEMA.names)
    body = [
        f"# {name}",
        "",
        "Synthetic question-answer pairs made by linksyn (LinkSyn multi-seed synthesis and BoostQA multi-grade, "
        "hard-question and refinement modes), deduplicated (exact and MinHash near-duplicates) and decontaminated "
        "against evaluation sets. Each record's `source_seed_ids`, `path_id` and `path_kps` (the walk's knowledge "
        "points) give its lineage.",
        "",
        f"Columns: {columns}.",
        "",
        "Files (every format holds the same records): " + ", ".join(f"`{g}`" for g in globs.values()) + ".",
        "",
        "## Summary",
        "",
        f"- records: {totals.records}",
        f"- shards: {totals.shards} (formats: {', '.join(formats)})",
        f"- prompt tokens: {totals.prompt_tokens}",
        f"- completion tokens: {totals.completion_tokens} (prompt and completion tokens of the kept records' own "
        "requests)",
        f"- dropped: {sum(totals.dropped.values())}",
        "",
        *(f"![{caption}]({PLOTS_DIR}/{file})\n" for file, caption in plots),
        _table("Disciplines", totals.disciplines),
        _table("Difficulty (1 primary .. 5 graduate)", totals.difficulty, key_sort=True),
        _table("Modes", totals.modes),
        _table("Languages", totals.langs),
        _table("Models", totals.models),
        _table("Prompt versions", totals.prompt_versions, key_sort=True),
        _table("Dropped by reason", totals.dropped),
    ]
    if spend is not None:
        body.append(_spend_table(spend, currency, totals.records))
    return f"---\n{header}---\n\n" + "\n".join(body)
