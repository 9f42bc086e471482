"""The `linksyn` command line: run the embedded pipeline, serve one service, push seeds, read service stats.

Heavy modules (the bus, gRPC, the services) are imported inside the commands, so `linksyn --help` stays fast.
Commands that later parts of linksyn add (`graph`, `sample`, `train`, `probe`, `near-dups`) are mounted from
`linksyn.<service>.cli` when that module exists, and loaded only when invoked.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Optional

import click
import typer
from linksyn import registry
from typer.core import TyperGroup


@dataclass(frozen=True)
class PluginCommand:
    """A command another part of linksyn provides in `module`: a typer app (`attr` is a Typer) or a function."""

    name: str
    module: str
    attr: str
    help: str


PLUGINS: tuple[PluginCommand, ...] = (
    PluginCommand("graph", "linksyn.graph.cli", "app", "Inspect and query the knowledge-point graph."),
    PluginCommand("sample", "linksyn.sampler.cli", "sample", "Draw value-function walks from a graph snapshot."),
    PluginCommand("train", "linksyn.trainer.cli", "train", "Continual pre-training on synthesized QA."),
    PluginCommand("probe", "linksyn.trainer.cli", "probe", "Probe a checkpoint per discipline x difficulty."),
    PluginCommand("near-dups", "linksyn.sink.cli", "near_dups",
                  "Remove near duplicates across the whole dataset (datatrove MinHash; after the stream)."),
)
"""Commands mounted when their module exists (checked without importing it)."""


def _module_exists(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyCommand(click.Command):
    """Stands for a plugin command in `linksyn --help` (its short help is static) and becomes the real command,
    imported from its module, as soon as it is invoked or asked for its own help."""

    def __init__(self, plugin: PluginCommand) -> None:
        super().__init__(plugin.name, help=plugin.help, short_help=plugin.help, add_help_option=False)
        self.plugin = plugin
        self._real: click.Command | None = None

    def real(self) -> click.Command:
        if self._real is None:
            module = importlib.import_module(self.plugin.module)
            obj = getattr(module, self.plugin.attr, None)
            if obj is None:
                raise click.ClickException(
                    f"{self.plugin.module} has no {self.plugin.attr!r} to run as `linksyn {self.name}`"
                )
            if isinstance(obj, typer.Typer):
                # Mounted under a parent, as add_typer would: a sub-app gets no shell-completion options of its own.
                parent = typer.Typer(add_completion=False)
                parent.add_typer(obj, name=self.name)
                cmd = typer.main.get_command(parent).commands[self.name]  # type: ignore[attr-defined]
            elif isinstance(obj, click.Command):
                cmd = obj
            else:
                single = typer.Typer(add_completion=False)
                single.command(self.name)(obj)
                cmd = typer.main.get_command(single)
            cmd.name = self.name
            self._real = cmd
        return self._real

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        return self.real().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        return self.real().invoke(ctx)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self.real().get_params(ctx)


class LinksynGroup(TyperGroup):
    """The top-level group: typer's, plus the plugin commands whose modules exist in this build."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for plugin in PLUGINS:
            if plugin.name not in self.commands and _module_exists(plugin.module):
                self.add_command(LazyCommand(plugin), plugin.name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order added: run, report, serve, push, status, schema, config, then plugins


app = typer.Typer(
    name="linksyn",
    cls=LinksynGroup,
    help=(
        "linksyn: knowledge-rich QA synthesis (LinkSyn + BoostQA) as services on Kafka.\n\n"
        "Seeds go in, knowledge points are extracted, a knowledge-point graph is built and walked, and new QA are "
        "synthesized from linked seeds. `linksyn run` does it all in one process; `linksyn serve` runs one service "
        "against Kafka. Configuration: a YAML file (--config or $LINKSYN_CONFIG) plus LINKSYN_* environment "
        "variables; see `linksyn config show`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True, add_completion=False)
app.add_typer(config_app, name="config")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _load_config(path: Optional[Path]) -> Any:
    from linksyn.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        raise _fail(str(e)) from None


def _setup_logging(verbose: bool) -> None:
    from linksyn.common.config import URLPasswordFilter

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, URLPasswordFilter) for f in handler.filters):
            handler.addFilter(URLPasswordFilter())


ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="YAML configuration file (default: $LINKSYN_CONFIG, else built-in defaults). LINKSYN_* environment "
    "variables override it, e.g. LINKSYN_BUS__KAFKA__BOOTSTRAP=host:9092.",
    exists=True,
    dir_okay=False,
    show_default=False,
)
FormatOption = typer.Option(
    None,
    "--format",
    "-f",
    help="Read every seed path as this format instead of detecting it: jsonl (canonical), gsm8k, math, mmlu, "
    "cmmlu, parquet, hf (a datasets save_to_disk folder).",
    show_default=False,
)
VerboseOption = typer.Option(False, "--verbose", "-v", help="Log progress of every component (INFO) to stderr.")


def _seed_reader(paths: list[Path], fmt: Optional[str], cfg: Any) -> Any:
    from linksyn.common.seeds import SeedReader, SeedSourceError

    try:
        return SeedReader(paths, fmt, max_row_bytes=cfg.runtime.max_record_bytes)
    except SeedSourceError as e:
        raise _fail(str(e)) from None


def _print_rejected(reader: Any, limit: int = 20) -> None:
    for row in reader.rejected[:limit]:
        typer.echo(f"  rejected {row}", err=True)
    if reader.rejected_count > limit:
        typer.echo(f"  ... and {reader.rejected_count - limit} more rejected row(s)", err=True)


# ---- run ------------------------------------------------------------------------------------------------------


def _print_run_summary(report: dict[str, Any], selected: list[str], out: Path, html_report: bool) -> None:
    """What the run did, once: the totals, each stage in its own terms, where the report is."""
    from linksyn.pipeline import STATUS_NOT_AVAILABLE
    from linksyn.report.summary import stage_line

    typer.echo(f"seeds in: {report['seeds_in']}, rejected rows: {report['seeds_rejected']['count']}, "
               f"dead letters: {report['dead_letters']['count']}")
    for name in selected:
        typer.echo(f"  {stage_line(name, report['stages'][name])}")
    typer.echo(f"stop reason: {report['stop_reason']}")
    if report["stages_not_available"]:
        none_ran = all(report["stages"][n]["status"] == STATUS_NOT_AVAILABLE for n in selected)
        typer.echo(
            f"not available in this build: {', '.join(report['stages_not_available'])}"
            + (" (no stage ran)" if none_ran else "")
        )
    where = [f"figures: {out / 'report.json'}"]
    if report.get("dataset"):
        where.append(f"dataset: {report['dataset']}")
    if html_report:
        from linksyn.report import write_report

        try:
            typer.echo(f"report: {write_report(out)} ({'; '.join(where)})")
            return
        except Exception as e:  # noqa: BLE001 - the run's outputs stand; the page is only a view of them
            logging.getLogger(__name__).debug("writing report.html failed", exc_info=True)
            typer.secho(f"warning: the HTML report could not be written ({type(e).__name__}: {e}); "
                        f"`linksyn report {out}` tries again", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"report: {out / 'report.json'}" + (f" ({where[1]})" if len(where) > 1 else ""))



@app.command()
def run(
    seeds: list[Path] = typer.Option(
        ...,
        "--seeds",
        "-s",
        help="Seed file or folder; repeat for several (--seeds a.jsonl --seeds mmlu/dev). Formats are detected "
        "per file (see --format).",
        show_default=False,
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder: report.json, report.html, graph snapshots, the dataset.",
        show_default=False,
    ),
    config: Optional[Path] = ConfigOption,
    stages: Optional[str] = typer.Option(
        None,
        "--stages",
        help="Comma-separated stages to run, in any order (they run in pipeline order): extractor, graph, "
        "sampler, synth, sink, trainer. Default: all but trainer.",
        show_default=False,
    ),
    fmt: Optional[str] = FormatOption,
    timeout: float = typer.Option(
        0.0,
        "--timeout",
        help="Give up (and report what finished) when the stages have run this many seconds (model loading not "
        "counted); 0 = no limit.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an earlier run in OUT (its report, graph snapshots, dataset, trainer runs); "
        "without it such an OUT is refused, since stages would resume from its state."
    ),
    html_report: bool = typer.Option(
        True, "--report/--no-report", help="Also write OUT/report.html, the run's figures and plots (`linksyn report`)."
    ),
    dry_run: int = typer.Option(
        0, "--dry-run", metavar="PATHS",
        help="Project instead of run: the tokens, cost (budget.prices) and time of extracting every seed and "
        "synthesizing PATHS paths, from a sample run (--sample-seeds seeds spread over the input, --sample-paths "
        "paths); writes OUT/projection.json beside the sample's report.",
    ),
    sample_seeds: int = typer.Option(24, "--sample-seeds", min=1, help="With --dry-run: seeds the sample extracts."),
    sample_paths: int = typer.Option(8, "--sample-paths", min=1, help="With --dry-run: paths the sample synthesizes."),
    verbose: bool = VerboseOption,
) -> None:
    """Run the whole pipeline in this process on an in-memory bus and write OUT/report.json and OUT/report.html.

    Seeds are read (bad rows are reported with file and line, and skipped), produced to linksyn.seeds, and every
    available stage processes them in order: extractor -> graph -> sampler -> synth -> sink (-> trainer). The
    report lists seeds_in, rejected rows, dead letters, and per-stage counts, totals, details and timings, and says
    which stages are not available in this build; report.html shows it with plots (see `linksyn report`). Exit code:
    0 when every selected stage that exists finished, 1 otherwise.

    While it runs, the stage being waited for prints its progress every 15 s: input records done, in flight,
    tokens/s, outputs (QA kept), cost, and the time left at its rate so far. With a budget (the `budget` section:
    budget.max_cost, budget.max_tokens, per service) the sampler stops emitting paths once the budget is spent, the
    paths in flight finish, and the report's stop_reason says so.
    """
    from linksyn.pipeline import (
        PipelineError,
        SeedInput,
        previous_run_outputs,
        run_pipeline,
        select_stages,
    )

    _setup_logging(verbose)
    cfg = _load_config(config)
    try:
        selected = select_stages(stages.split(",") if stages else None)
    except PipelineError as e:
        raise _fail(str(e)) from None
    existing = previous_run_outputs(out)
    if existing and not overwrite:
        raise _fail(
            f"{out} holds a previous run ({', '.join(p.name for p in existing)}); choose another --out, or pass "
            "--overwrite to replace it"
        )
    reader = _seed_reader(seeds, fmt, cfg)
    seeds_total = 0
    if dry_run:
        seeds_total = sum(1 for _ in _seed_reader(seeds, fmt, cfg))
        step = max(1, seeds_total // sample_seeds)
        cfg.sampler.max_paths, cfg.sampler.paths_per_seed = sample_paths, 0.0
        typer.echo(f"dry run: {seeds_total} seeds; extracting {min(sample_seeds, seeds_total)} of them (one in "
                   f"{step}) and synthesizing {sample_paths} paths to project {dry_run} paths", err=True)

    def progress(it: Any) -> Any:
        from tqdm import tqdm

        if dry_run:
            import itertools

            it = itertools.islice((s for i, s in enumerate(it) if i % step == 0), sample_seeds)
        return tqdm(it, desc="seeds", unit=" seeds", file=sys.stderr, dynamic_ncols=True)

    report = run_pipeline(
        cfg,
        SeedInput(reader, progress),
        out,
        selected,
        timeout_s=timeout or None,
        echo=lambda line: typer.echo(line, err=True),
        extra_report={"config_file": str(config) if config else None, "seed_paths": [str(p) for p in seeds]},
        overwrite=overwrite,
    )
    _print_rejected(reader)
    _print_run_summary(report, selected, Path(out), html_report)
    if dry_run and report["status"] == "ok":
        from linksyn.pipeline import format_duration, project

        projection = project(report, seeds_total, dry_run)
        (Path(out) / "projection.json").write_text(json.dumps(projection, indent=2) + "\n", encoding="utf-8")
        t = projection["projected"]["total"]
        typer.echo(f"projection for {seeds_total} seeds and {dry_run} paths: prompt_tokens={t['prompt_tokens']:.0f} "
                   f"completion_tokens={t['completion_tokens']:.0f} cost={t['cost']:.4f} {cfg.budget.currency} "
                   f"time={format_duration(t['seconds'])} (stages one after the other, at the sample's rate)")
        for n in projection["sample"].values():
            if "note" in n:
                typer.echo(f"  {n['note']}")
        typer.echo(f"projection: {Path(out) / 'projection.json'}")
    if report["status"] != "ok":
        typer.secho(f"error: {report.get('error', report['status'])}", err=True, fg=typer.colors.RED)
        if report.get("threads_left_running"):
            # A stage's worker is still inside native code (an LLM batch that outlived the shutdown timeout);
            # letting the interpreter tear it down aborts the process (exit 134), so leave at once, with 1.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        raise typer.Exit(1)


# ---- report ---------------------------------------------------------------------------------------------------


@app.command()
def report(
    path: str = typer.Argument(
        ...,
        help="A `linksyn run` output folder, a dataset folder, a graph snapshot store, or a folder holding dataset/ "
        "and graph/ (local paths or fsspec URLs such as s3://bucket/prefix).",
        show_default=False,
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Where to write the page; default: PATH/report.html for a run folder or a folder "
        "holding dataset/ and graph/ (a dataset folder or graph store itself needs --out).", show_default=False
    ),
    graph: Optional[str] = typer.Option(
        None, "--graph", help="The graph snapshot store (graph.snapshot_url), if not PATH/graph.", show_default=False
    ),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", help="The dataset folder (sink.output_dir), if not PATH/dataset.", show_default=False
    ),
    dataset_state: Optional[str] = typer.Option(
        None, "--dataset-state", help="The sink's state folder (sink.state_dir) when it is not DATASET/.sink-state: "
        "its manifest has the drops by reason.", show_default=False,
    ),
    probe: list[Path] = typer.Option(
        [], "--probe", help="`linksyn probe --json` results, oldest first (repeatable): the latest is shown per "
        "discipline x grade with its change from the one before.", exists=True, dir_okay=False, show_default=False,
    ),
    sample_qa: int = typer.Option(12, "--sample-qa", min=0, help="Kept QA shown with their lineage."),
) -> None:
    """Write one self-contained HTML page (inline SVG plots, no script, nothing fetched) showing a run or what a
    cluster left.

    It shows: the funnel seeds -> annotated -> paths -> synthesized -> kept with drop and dead-letter reasons;
    discipline and grade shares, target vs realised vs the dataset; KP coverage over paths of the value walker and
    the uniform walker; graph size, degree distribution and the most popular KPs; time, tokens and cost per stage
    and model; a sample of kept QA with their seeds, path KPs, mode and model; probes per discipline x grade. Parts
    whose sources are missing are left out, with a note. `linksyn run` writes it as OUT/report.html.
    """
    from linksyn.report import ReportSourceError, write_report

    if out is None and "://" in path:
        raise _fail("--out is needed when PATH is a URL")
    try:
        written = write_report(path, out, graph=graph, dataset=dataset, dataset_state=dataset_state,
                               probe_files=probe, sample_qa=sample_qa)
    except ReportSourceError as e:
        raise _fail(str(e)) from None
    typer.echo(f"report: {written} ({written.stat().st_size / 1e6:.2f} MB)")


# ---- serve ----------------------------------------------------------------------------------------------------


@app.command()
def serve(
    service: str = typer.Argument(
        ..., help=f"The service to run: {', '.join(registry.SERVICES)}.", show_default=False
    ),
    config: Optional[Path] = ConfigOption,
    verbose: bool = typer.Option(True, "--verbose/--quiet", help="Log at INFO (default) or WARNING level."),
) -> None:
    """Run one service as a process on the Kafka bus, with its gRPC API (+ health; reflection if server.reflection)
    and /metrics.

    The bus is Kafka unless bus.kind is set explicitly in the config or environment. Point it at brokers with
    bus.kafka.bootstrap (LINKSYN_BUS__KAFKA__BOOTSTRAP=host:9092). Stops cleanly on SIGTERM/SIGINT: in-flight
    work finishes or is handed back, offsets are committed. The exit code is 0 after a clean stop.
    """
    _setup_logging(verbose)
    if service not in registry.SERVICES:
        raise _fail(f"unknown service {service!r}; services: {', '.join(registry.SERVICES)}")
    cfg = _load_config(config)
    try:
        module = registry.import_app(service)
    except registry.StageUnavailable as e:
        raise _fail(f"service {service!r} is not available in this build ({e})") from None
    except Exception as e:  # noqa: BLE001 - a broken install must say what is broken, not print a traceback
        raise _fail(f"service {service!r} cannot be loaded: {type(e).__name__}: {e}", code=1) from None
    if "kind" not in cfg.bus.model_fields_set:
        cfg.bus.kind = "kafka"
    elif cfg.bus.kind == "memory":
        typer.echo("warning: bus.kind is 'memory': this process will see only its own records", err=True)
    from linksyn.common.bus import make_bus
    from linksyn.common.runtime.host import run_service

    bus = make_bus(cfg.bus)
    try:
        parts = module.build(cfg.section(service), cfg, bus)
    except Exception:
        bus.close()
        raise
    if parts.token_required and cfg.server.grpc_token is None:
        bus.close()
        raise _fail(f"{service}: server.grpc_token (LINKSYN_SERVER__GRPC_TOKEN) must be set: {parts.token_required}",
                    code=2)
    raise typer.Exit(run_service(parts, cfg, bus))


# ---- push -----------------------------------------------------------------------------------------------------


@app.command()
def push(
    paths: list[Path] = typer.Argument(
        ..., help="Seed files or folders (formats detected per file).", show_default=False
    ),
    bootstrap: Optional[str] = typer.Option(
        None,
        "--bootstrap",
        "-b",
        help="Kafka bootstrap host:port[,host:port]; default: bus.kafka.bootstrap of the config.",
        show_default=False,
    ),
    config: Optional[Path] = ConfigOption,
    fmt: Optional[str] = FormatOption,
    verbose: bool = VerboseOption,
) -> None:
    """Stream seeds into the linksyn.seeds topic of a Kafka cluster, with a progress bar.

    The topic is created (bus.topics.partitions partitions) if it does not exist. Each seed is a Seed protobuf
    (header content-type: application/x-protobuf) keyed by its id (deterministic: a re-push produces the same keys
    and ids); other producers may write JSON seeds instead (`linksyn schema seed`). Rejected rows are listed as
    file:line: reason. Exits non-zero only if nothing could be pushed.
    """
    _setup_logging(verbose)
    cfg = _load_config(config)
    cfg.bus.kind = "kafka"
    if bootstrap:
        cfg.bus.kafka.bootstrap = bootstrap
    reader = _seed_reader(paths, fmt, cfg)
    from linksyn.common.bus import BusError, make_bus
    from linksyn.common.seeds.wire import PROTOBUF_HEADERS
    from tqdm import tqdm

    topic = cfg.bus.topics.seeds
    try:
        bus = make_bus(cfg.bus)
    except BusError as e:
        raise _fail(f"cannot connect to Kafka at {cfg.bus.kafka.bootstrap}: {e}", code=1) from None
    pushed = 0
    try:
        bus.ensure_topics({topic: cfg.bus.topics.partitions})
        for seed in tqdm(reader, desc=f"push {topic}", unit=" seeds", file=sys.stderr, dynamic_ncols=True):
            bus.produce(topic, seed.SerializeToString(), key=seed.id.encode("utf-8"), headers=PROTOBUF_HEADERS)
            pushed += 1
        bus.flush()
    except BusError as e:
        where = f"{topic} at {cfg.bus.kafka.bootstrap}"
        raise _fail(f"pushing to {where} failed after {pushed} seed(s): {e}", code=1) from None
    finally:
        bus.close()
    _print_rejected(reader)
    typer.echo(
        f"pushed {pushed} seed(s) to {topic} at {cfg.bus.kafka.bootstrap}; {reader.rejected_count} row(s) rejected"
    )
    if pushed == 0:
        raise _fail("nothing was pushed", code=1)


# ---- status ---------------------------------------------------------------------------------------------------


def _reflected_services(channel: Any, timeout: float) -> list[str]:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names: list[str] = []
    for reply in stub.ServerReflectionInfo(iter([request]), timeout=timeout):
        names += [s.name for s in reply.list_services_response.service]
    return names


def _stats(channel: Any, timeout: float) -> tuple[str, Any]:
    """(gRPC service name, StatsReply) of whichever linksyn service answers on `channel`."""
    import grpc
    from linksyn.v1 import common_pb2

    by_grpc_name = {e.grpc_service: e for e in registry.SERVICES.values()}
    try:
        candidates = [n for n in _reflected_services(channel, timeout) if n in by_grpc_name]
    except grpc.RpcError:
        candidates = []
    candidates = candidates or list(by_grpc_name)  # no reflection: ask each service in turn
    last: Exception | None = None
    for name in candidates:
        entry = by_grpc_name[name]
        module = importlib.import_module(f"linksyn.v1.{entry.proto}_pb2_grpc")
        try:
            return name, getattr(module, entry.stub)(channel).Stats(common_pb2.StatsRequest(), timeout=timeout)
        except grpc.RpcError as e:
            last = e
            if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
    raise last or RuntimeError("no linksyn service answered")


def _key_counters(counters: dict[str, float]) -> dict[str, float]:
    """Sums over labels of the consumer counters every service has, the LLM tokens and cost of a spending service,
    and the smallest budget left that a sampler with a budget reports."""
    wanted = {
        "consumer_records_in_total": "in",
        "consumer_records_out_total": "out",
        "consumer_records_failed_total": "failed",
        "consumer_dead_letters_total": "dead",
        "consumer_lag_records": "lag",
        "llm_tokens_total": "tokens",
        "llm_cost_total": "cost",
    }
    out: dict[str, float] = {}
    for key, value in counters.items():
        name = key.split("{", 1)[0]
        short = wanted.get(name)
        if short:
            out[short] = out.get(short, 0.0) + value
        elif name == "budget_left":
            out["budget_left"] = min(out.get("budget_left", value), value)
    return out


def progress(counters: dict[str, float], uptime_s: float | None) -> dict[str, float]:
    """Rates since the service started and the time its lag would take at that rate: records/s (in), tokens/s, and
    eta_s (lag / records/s; absent while nothing was read)."""
    c = _key_counters(counters)
    out: dict[str, float] = {}
    if not uptime_s:
        return out
    rate = c.get("in", 0.0) / uptime_s
    out["records_per_s"] = rate
    if c.get("tokens"):
        out["tokens_per_s"] = c["tokens"] / uptime_s
    if rate > 0 and "lag" in c:
        out["eta_s"] = c["lag"] / rate
    return out


def _format_counter(key: str, value: float) -> str:
    money = key in ("cost", "budget_left") and not float(value).is_integer()
    return f"{key}={value:.4f}" if money else f"{key}={int(value)}"


def target_status(target: str, token: Optional[str], tls_ca: Optional[str], timeout: float) -> dict[str, Any]:
    """Health, service and Stats of one target, as a row of `linksyn status`."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from linksyn.common.runtime.grpc_server import grpc_channel

    row: dict[str, Any] = {"target": target, "service": "", "health": "", "uptime_s": None, "counters": {}}
    channel = grpc_channel(target, token=token, tls_ca=tls_ca)
    try:
        try:
            check = health_pb2.HealthCheckRequest(service="")
            reply = health_pb2_grpc.HealthStub(channel).Check(check, timeout=timeout)
            row["health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as e:
            row["health"] = "UNREACHABLE" if e.code() == grpc.StatusCode.UNAVAILABLE else e.code().name
            row["error"] = e.details() or e.code().name
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return row
        try:
            name, stats = _stats(channel, timeout)
            row.update(
                grpc_service=name,
                service=stats.service or name.rsplit(".", 1)[1].removesuffix("Service").lower(),
                version=stats.version,
                uptime_s=stats.uptime_s,
                counters=dict(stats.counters),
                details=json.loads(stats.details_json) if stats.details_json else {},
            )
        except grpc.RpcError as e:
            row["error"] = f"Stats: {e.code().name}: {e.details()}"
    finally:
        channel.close()
    return row


def _format_uptime(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


@app.command()
def status(
    targets: list[str] = typer.Option(
        ..., "--target", "-t", help="host:port of a service's gRPC endpoint; repeat for several.", show_default=False
    ),
    token: Optional[str] = typer.Option(
        None,
        "--token",
        envvar="LINKSYN_SERVER__GRPC_TOKEN",
        help="Bearer token, when the services require one (server.grpc_token); better from the environment "
        "variable than on the command line, where other users' `ps` can read it.",
        show_default=False,
    ),
    tls_ca: Optional[Path] = typer.Option(
        None,
        "--tls-ca",
        help="CA bundle to verify TLS services against (default: plaintext).",
        exists=True,
        dir_okay=False,
        show_default=False,
    ),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds to wait for each call."),
    as_json: bool = typer.Option(
        False, "--json", help="Print every target's full Stats (all counters, details) as JSON."
    ),
) -> None:
    """Show health, uptime and key counters of running services (their Stats RPC and grpc.health.v1).

    Each target is asked which linksyn service it is (gRPC reflection; without reflection each service's Stats
    is tried). Columns: in/out = records consumed/produced, failed = failed attempts, dead = dead-lettered
    records, lag = records of its input topics the group has not committed, tokens/cost = LLM spend (budget.prices),
    budget_left = what the tightest budget limit has left (the sampler), tok/s = tokens per second and eta = the
    time the lag takes at the rate read so far, both since the service started. Exit code 1 if a target is
    unreachable or not SERVING.
    """
    rows = [target_status(t, token, str(tls_ca) if tls_ca else None, timeout) for t in targets]
    for r in rows:
        r["progress"] = progress(r["counters"], r["uptime_s"])
    if as_json:
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
    else:
        header = ("TARGET", "SERVICE", "HEALTH", "UPTIME", "COUNTERS")
        lines = []
        for r in rows:
            counters = _key_counters(r["counters"])
            shown = " ".join(_format_counter(k, v) for k, v in counters.items())
            p = r["progress"]
            if "tokens_per_s" in p:
                shown += f" tok/s={p['tokens_per_s']:.1f}"
            if counters.get("lag") and "eta_s" in p:
                from linksyn.pipeline import format_duration

                shown += f" eta={format_duration(p['eta_s'])}"
            shown = shown or r.get("error", "-")
            lines.append((r["target"], r["service"] or "-", r["health"], _format_uptime(r["uptime_s"]), shown))
        widths = [max(len(x[i]) for x in (header, *lines)) for i in range(4)]
        for line in (header, *lines):
            typer.echo("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[4])
    if any(r["health"] != "SERVING" for r in rows):
        raise typer.Exit(1)


# ---- config ---------------------------------------------------------------------------------------------------


@config_app.command("show")
def config_show(config: Optional[Path] = ConfigOption) -> None:
    """Print the effective configuration (defaults < YAML file < LINKSYN_* environment) as YAML, secrets masked."""
    from linksyn.config import config_to_yaml

    typer.echo(config_to_yaml(_load_config(config)), nl=False)


# ---- schema ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedSchema:
    """A JSON Schema linksyn publishes: the function in `module` that builds it, and what it describes."""

    module: str
    function: str
    what: str


SCHEMAS: dict[str, PublishedSchema] = {
    "seed": PublishedSchema(
        "linksyn.common.seeds.schema", "seed_json_schema",
        "a seed: a line of a JSONL seed file, or a JSON record on linksyn.seeds (content-type application/json)",
    ),
    "kept-qa": PublishedSchema(
        "linksyn.sink.kept", "kept_qa_json_schema",
        "a kept QA: a line of the dataset's JSONL shards, or a record on sink.kept_topic",
    ),
}
"""Name -> schema; the repository keeps each as schemas/<name>.schema.json (tests/test_schemas.py checks them)."""


def schema_document(name: str) -> str:
    """The JSON Schema `name` as printed by `linksyn schema NAME` and kept in schemas/NAME.schema.json."""
    found = SCHEMAS[name]
    built = getattr(importlib.import_module(found.module), found.function)()
    return json.dumps(built, indent=2, ensure_ascii=False) + "\n"


@app.command()
def schema(
    name: Optional[str] = typer.Argument(
        None, help=f"The schema to print: {', '.join(SCHEMAS)}. Without it, the list.", show_default=False
    ),
) -> None:
    """Print a published JSON Schema of the records other systems write or read as JSON.

    `seed`: what any Kafka producer may write to linksyn.seeds (header content-type: application/json), the same
    row a JSONL seed file holds per line. `kept-qa`: what the sink publishes to sink.kept_topic, the same row its
    JSONL shards hold. The repository has them as schemas/NAME.schema.json; the protobuf records are
    protos/linksyn/v1/records.proto.
    """
    if name is None:
        for key, found in SCHEMAS.items():
            typer.echo(f"{key:8}  {found.what}")
        return
    if name not in SCHEMAS:
        raise _fail(f"unknown schema {name!r}; schemas: {', '.join(SCHEMAS)}")
    typer.echo(schema_document(name), nl=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
