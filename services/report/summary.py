"""One line per stage of a run, in the stage's own terms (pure: a stage's entry of report.json in, text out).

`linksyn run` prints these lines and the HTML report shows them. Each stage says what it did: the extractor seeds
annotated and KPs kept and dropped, the graph its size, the sampler paths, coverage and short link paths, the synth
QA made and dropped, the sink rows kept, duplicates and leaks. A stage without a phrasing of its own (a new one) gets
the generic line of its consumer loop's counts and its totals.

What a stage's entry holds (linksyn.pipeline.StageRun.report): status, reason, wall_s, counts (its consumer loop:
records_in/out/failed, dead_letters), totals (its own counters: keys ending in `_tokens` are tokens spent, keys
starting with `drop:` drops by reason, keys starting with `cost` costs; the extractor's `kps_*` count its KPs) and
details (its Stats RPC details).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

Stage = Mapping[str, Any]


def _n(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, (int, float)) else "?"


def token_totals(totals: Mapping[str, Any]) -> dict[str, float]:
    """The token counters of a stage's totals (keys ending in `_tokens`)."""
    return {k: v for k, v in totals.items() if k.endswith("_tokens") and isinstance(v, (int, float))}


def cost_totals(totals: Mapping[str, Any]) -> dict[str, float]:
    """The cost counters of a stage's totals (keys starting with `cost`, e.g. `cost_usd`)."""
    return {k: v for k, v in totals.items() if k.startswith("cost") and isinstance(v, (int, float))}


def drops(totals: Mapping[str, Any]) -> dict[str, float]:
    """Drops by reason of a stage's totals (`drop:<reason>` keys), largest first."""
    found = {k.removeprefix("drop:"): v for k, v in totals.items() if k.startswith("drop:")}
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def _tokens(totals: Mapping[str, Any]) -> str:
    tokens = token_totals(totals)
    if not any(tokens.values()):
        return ""
    parts = [f"{_n(v)} {k.removesuffix('_tokens')}" for k, v in sorted(tokens.items())]
    costs = [f"{k.removeprefix('cost').strip('_') or 'cost'} {v:,.4g}" for k, v in sorted(cost_totals(totals).items())]
    return "; tokens: " + " + ".join(parts) + (f"; cost: {', '.join(costs)}" if costs else "")


def _dead(stage: Stage) -> str:
    n = stage.get("counts", {}).get("dead_letters", 0)
    return f"; {_n(n)} dead-lettered" if n else ""


def kp_drops(totals: Mapping[str, Any]) -> dict[str, float]:
    """The extractor's KPs dropped by the validator, by reason (`kps_dropped_<reason>` keys), largest first."""
    found = {k.removeprefix("kps_dropped_"): v for k, v in totals.items()
             if k.startswith("kps_dropped_") and isinstance(v, (int, float)) and v}
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def _kps(totals: Mapping[str, Any]) -> str:
    if "kps_kept" not in totals:
        return ""
    line = (f"; {_n(totals['kps_kept'])} KPs kept ({_n(totals.get('kps_merged', 0))} merged, "
            f"{_n(totals.get('kps_ungrounded', 0))} ungrounded)")
    dropped = kp_drops(totals)
    if dropped:
        line += f", {_n(sum(dropped.values()))} dropped: " + ", ".join(f"{k} {_n(v)}" for k, v in dropped.items())
    return line


def _extractor(stage: Stage) -> str:
    t = stage.get("totals", {})
    d = stage.get("details", {})
    by = f" ({d['annotator']})" if d.get("annotator") else ""
    return f"annotated {_n(t.get('annotated', stage.get('counts', {}).get('records_out', 0)))} seeds{by}" + \
        (f", {_n(t['failed'])} attempts failed" if t.get("failed") else "") + _kps(t) + _dead(stage) + _tokens(t)


def _graph(stage: Stage) -> str:
    d = stage.get("details", {})
    if "nodes" not in d:
        return f"read {_n(stage.get('counts', {}).get('records_in', 0))} annotated seeds, published no snapshot" + _dead(stage)
    return (f"{_n(d['nodes'])} knowledge points, {_n(d['edges'])} edges, {_n(d['seeds'])} seeds, "
            f"{_n(d.get('components', 0))} components (snapshot v{d.get('snapshot_version', '?')})") + _dead(stage)


def _sampler(stage: Stage) -> str:
    d = stage.get("details", {})
    if "paths_emitted" not in d:
        return "emitted no paths (no graph snapshot was walked)"
    tv = d.get("discipline", {}).get("total_variation")
    return (f"emitted {_n(d['paths_emitted'])} paths ({d.get('walker', '?')} walker), covering "
            f"{d.get('kp_coverage', 0):.1%} of {_n(d.get('kps', 0))} knowledge points"
            + (f"; discipline mix {tv:.3f} from target (total variation)" if isinstance(tv, (int, float)) else "")
            + _short_links(d.get("link_paths_short", {})))


def _short_links(short: Mapping[str, Any]) -> str:
    """Link paths whose seeds shared too few KPs (linksyn.sampler.sampler.Sampler.link_stats)."""
    if not any(short.values()):
        return ""
    return (f"; short link paths: {_n(short.get('retried', 0))} walked again, "
            f"{_n(short.get('to_single_seed', 0))} moved to a single-seed mode, {_n(short.get('dropped', 0))} dropped")


def _synth(stage: Stage) -> str:
    t = stage.get("totals", {})
    d = stage.get("details", {})
    model = f" with {d['generator']}" if d.get("generator") else ""
    line = f"{_n(t.get('paths', 0))} paths -> {_n(t.get('qa', 0))} QA{model}"
    dropped = drops(t)
    if dropped:
        line += f"; dropped {_n(sum(dropped.values()))}: " + ", ".join(f"{k} {_n(v)}" for k, v in dropped.items())
    return line + _dead(stage) + _tokens(t)


def _sink(stage: Stage) -> str:
    t = stage.get("totals", {})
    dropped = drops(t)
    leaks = dropped.pop("contaminated", 0)
    line = (f"kept {_n(t.get('kept', 0))} rows; {_n(dropped.pop('duplicate', 0))} duplicates, "
            f"{_n(dropped.pop('near_duplicate', 0))} near duplicates, {_n(leaks)} leaks (eval overlap)")
    line += "".join(f", {_n(v)} {k}" for k, v in dropped.items())
    if t.get("replays"):
        line += f"; {_n(t['replays'])} replays skipped"
    return line + f"; {_n(t.get('shards', 0))} shards" + _dead(stage)


def _trainer(stage: Stage) -> str:
    runs = stage.get("details", {}).get("runs", {})
    if not runs:
        return f"read {_n(stage.get('counts', {}).get('records_in', 0))} QA, started no training run"
    states: dict[str, int] = {}
    for state in runs.values():
        states[state] = states.get(state, 0) + 1
    return f"{len(runs)} training run(s): " + ", ".join(f"{v} {k}" for k, v in sorted(states.items()))


def _generic(stage: Stage) -> str:
    c = stage.get("counts", {})
    line = (f"in {_n(c.get('records_in', 0))}, out {_n(c.get('records_out', 0))}, "
            f"failed attempts {_n(c.get('records_failed', 0))}") + _dead(stage)
    others = {k: v for k, v in stage.get("totals", {}).items() if not k.startswith("drop:")}
    if others:
        line += "; " + ", ".join(f"{k} {_n(v)}" for k, v in sorted(others.items()))
    dropped = drops(stage.get("totals", {}))
    if dropped:
        line += "; dropped: " + ", ".join(f"{k} {_n(v)}" for k, v in dropped.items())
    return line


PHRASES: dict[str, Callable[[Stage], str]] = {
    "extractor": _extractor,
    "graph": _graph,
    "sampler": _sampler,
    "synth": _synth,
    "sink": _sink,
    "trainer": _trainer,
}
"""Each known stage's own phrasing of what it did."""


def stage_line(name: str, stage: Stage) -> str:
    """What stage `name` did, in its own terms, with its status and time: "sink: ran in 0.4s, kept 2 rows; ..."."""
    status = stage.get("status", "?")
    head = f"{name}: {status}"
    if "wall_s" in stage:
        head += f" in {stage['wall_s']:.1f}s"
    if stage.get("reason"):
        head += f" ({stage['reason']})"
    if status not in ("ran", "timed out", "interrupted", "failed") or not (stage.get("counts") or stage.get("details")
                                                                            or stage.get("totals")):
        return head
    try:
        what = PHRASES.get(name, _generic)(stage)
    except (KeyError, TypeError, ValueError, AttributeError):  # an entry of another version: say it plainly
        what = _generic(stage)
    return f"{head}, {what}"


def stage_lines(report: Mapping[str, Any]) -> list[str]:
    """One line per selected stage of a run's report.json, in pipeline order."""
    stages = report.get("stages", {})
    return [stage_line(name, stages[name]) for name in report.get("stages_selected", stages) if name in stages]
