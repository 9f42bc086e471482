"""`linksyn sample --graph DIR -n N`: walk the latest snapshot of a graph store offline, one path per line as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from collections import Counter

import typer
from linksyn.common.modes import LINK, mode_name
from linksyn.sampler.config import SamplerConfig
from linksyn.sampler.records import path_json, path_records
from linksyn.sampler.sampler import Sampler
from linksyn.sampler.targets import Targets


def sample(
    graph: Path = typer.Option(..., "--graph", help="Graph snapshot store directory (graph.snapshot_url)."),
    n: int = typer.Option(10, "-n", "--n", min=0, help="Paths to print."),
    walker: str = typer.Option("value", help="value, uniform or weight."),
    seed: int = typer.Option(0, help="Random seed."),
    alpha: float = typer.Option(SamplerConfig().alpha, help="Popularity exponent."),
    beta: float = typer.Option(SamplerConfig().beta, help="Coverage exponent."),
    gamma: float = typer.Option(SamplerConfig().gamma, help="Edge-weight exponent."),
    eta: float = typer.Option(SamplerConfig().eta, help="Feedback gain of the distribution gate."),
) -> None:
    """Print n paths of the latest snapshot in GRAPH as JSON lines (kps, seeds with id/question/answer/knowledge_points).

    A link path carries at least two seeds, consecutive ones sharing a KP of the path; a walk that cannot give that
    is drawn again, then its path goes to a single-seed mode (multi_grade/hard). A summary goes to stderr. An
    empty graph, or one where no walk reaches two KPs, is an error with the reason (exit 1)."""
    from linksyn.common.snapshots.store import SnapshotStore

    if not graph.is_dir():
        raise typer.BadParameter(f"{str(graph)!r} is not a directory", param_hint="--graph")
    snap = SnapshotStore(str(graph)).latest()
    if snap is None:
        raise typer.BadParameter(f"no graph snapshot in {str(graph)!r}", param_hint="--graph")
    if walker not in ("value", "uniform", "weight"):
        raise typer.BadParameter(f"walker must be value, uniform or weight, got {walker!r}", param_hint="--walker")
    cfg = SamplerConfig(alpha=alpha, beta=beta, gamma=gamma, eta=eta, walker=walker)
    try:
        s = Sampler(snap, cfg.walk_params(), Targets(default=cfg.default_targets), rng_seed=seed)
        batch = s.draw(n)
    except ValueError as e:  # UnwalkableGraph included: an empty or too sparse graph
        typer.echo(f"linksyn sample: cannot walk graph version {snap.version} in {str(graph)!r} ({snap.n_kps} KPs, "
                   f"{snap.n_seeds} seeds): {e}", err=True)
        raise typer.Exit(1) from None
    for rec in path_records(batch, snap):
        sys.stdout.write(json.dumps(path_json(rec), ensure_ascii=False) + "\n")
    modes = Counter(mode_name(int(m)) for m in batch.mode)
    links = batch.mode == LINK
    short = s.link_stats
    typer.echo(f"{len(batch)} paths ({', '.join(f'{k} {v}' for k, v in sorted(modes.items()))}); link paths carry "
               f"{int(batch.n_seeds[links].min()) if links.any() else 0}+ seeds; link paths short of 2 seeds: "
               f"{short['retried']} walked again, {short['to_single_seed']} moved to a single-seed mode",
               err=True)
