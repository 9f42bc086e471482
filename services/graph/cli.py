"""`linksyn graph ...`: look at a snapshot directory (or fsspec URL) without running the service."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Inspect knowledge-point graph snapshots.", no_args_is_help=True)


def _load(store_url: str, version: int):
    from linksyn.common.snapshots.store import SnapshotStore

    store = SnapshotStore(store_url)
    v = version or store.latest_version()
    if v is None:
        typer.echo(f"no complete snapshot in {store_url}", err=True)
        raise typer.Exit(1)
    try:
        return store.load(v)
    except (FileNotFoundError, ValueError) as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None


@app.command()
def stats(
    dir: str = typer.Argument(..., help="Snapshot directory or fsspec URL (e.g. OUT/graph)."),
    version: int = typer.Option(0, help="Snapshot version (0 = latest)."),
    top: int = typer.Option(10, help="How many of the most popular KPs to list."),
) -> None:
    """Size, components, degree distribution and the most popular KPs of a snapshot."""
    from linksyn.graph import analysis

    snap = _load(dir, version)
    cc = analysis.components(snap)
    ds = analysis.degree_stats(snap)
    typer.echo(f"snapshot: v{snap.version}")
    typer.echo(f"nodes: {snap.n_kps}")
    typer.echo(f"edges: {snap.n_edges}")
    typer.echo(f"seeds: {snap.n_seeds}")
    typer.echo(f"components: {cc.count} (largest {cc.largest} KPs, {cc.isolated} isolated)")
    typer.echo(f"disciplines: {len(snap.disciplines)}")
    for name, s in ds.items():
        typer.echo(f"{name}: " + " ".join(f"{k}={v:g}" for k, v in s.items()))
    typer.echo(f"offsets: {snap.offsets}")
    typer.echo(f"top {top} KPs by popularity:")
    for text, pop in analysis.top_kps(snap, top):
        typer.echo(f"  {pop:>8}  {text}")


@app.command()
def export(
    dir: str = typer.Argument(..., help="Snapshot directory or fsspec URL."),
    format: str = typer.Option("graphml", "--format", help="Output format: graphml, gml, ncol, lgl, pajek, edgelist."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: graph-v<version>.<format>)."),
    version: int = typer.Option(0, help="Snapshot version (0 = latest)."),
) -> None:
    """Write the KP graph (vertex text, popularity, discipline, difficulty; edge weight) with igraph."""
    from linksyn.graph.analysis import to_igraph

    formats = {"graphml", "gml", "ncol", "lgl", "pajek", "edgelist"}
    if format not in formats:
        typer.echo(f"unknown format {format!r}; one of {sorted(formats)}", err=True)
        raise typer.Exit(2)
    snap = _load(dir, version)
    path = out or Path(f"graph-v{snap.version}.{format}")
    to_igraph(snap).save(str(path), format=format)
    typer.echo(f"wrote {snap.n_kps} nodes and {snap.n_edges} edges to {path}")
