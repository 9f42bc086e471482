"""Run every benchmark of the project and write bench/RESULTS.md and bench/results.json.

    .venv/bin/python bench/run_all.py                 # the full run (an hour or more on 2 CPU cores)
    .venv/bin/python bench/run_all.py --quick         # small sizes: a smoke run of a few minutes
    .venv/bin/python bench/run_all.py --only bus,graph --timeout 600 --out /tmp/bench

Each bench runs as its own process (`python bench/<name>.py [its options] --json FILE`), one after the other, so
they do not compete with each other for the CPUs. A bench that fails or runs past its timeout is reported with its
exit status and the tail of its stderr, and the others still run. For every bench the report gives its wall time,
the load average before and after it (the machine may be shared: ratios against a baseline measured in the same
run are what compare across machines and runs), and a table: figure | value | baseline | ratio | aim | met?.
The machine (CPU model, cores, RAM, GPU, Python and library versions), the date, the git commit and the exact
command head the report. Each bench's full output goes to OUT/run_all-<name>.log.

A bench whose script has no `--json` option yet (see bench/report.py) still runs: its output is put in the report
as printed. Rows a bench could not measure here (data or a tool absent) appear as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from report import Aim, Figure, read_json  # noqa: E402

__all__ = ["Aim", "Bench", "BenchRun", "Figure", "main", "render_markdown", "run_bench"]

NOT_BENCHES = {"run_all", "report", "keyphrase_v1", "keyphrase_v2"}
"""Modules in bench/ that are not benchmarks (keyphrase_v1 and keyphrase_v2 are frozen extractors that bench/extract.py
and bench/kp_quality.py compare to)."""


@dataclass(frozen=True)
class Bench:
    """One bench script and how run_all runs it."""

    name: str
    what: str
    quick: tuple[str, ...]
    """Options of the smoke run (--quick): small sizes."""
    full: tuple[str, ...] = ()
    """Options of the full run: the script's defaults unless set."""
    timeout_s: float = 1800
    quick_timeout_s: float = 600

    @property
    def script(self) -> Path:
        return BENCH_DIR / f"{self.name}.py"

    def writes_json(self) -> bool:
        """Whether the script has the --json option of bench/report.py."""
        return "add_json_option(" in self.script.read_text(encoding="utf-8")


BENCHES: tuple[Bench, ...] = (
    Bench("runtime_loop", "consumer loop on the in-memory bus vs a bare poll/produce/commit loop",
          quick=("--records", "20000"), timeout_s=900, quick_timeout_s=300),
    Bench("bus", "records/s through KafkaBus (real Tansu broker) and InMemoryBus",
          quick=("--records", "5000", "--memory-records", "20000", "--repeat", "1"), timeout_s=1200,
          quick_timeout_s=300),
    Bench("seed_decode", "JSON seeds vs Seed protobufs through the extractor's decode step",
          quick=("--records", "5000", "--repeat", "2"), timeout_s=600, quick_timeout_s=300),
    Bench("graph", "KP graph ingest vs networkx, synthetic and real seeds (up to 10M seeds)",
          quick=("--sizes", "100000", "--nx-seeds", "20000", "--stage-seeds", "10000", "--stream-batch", "0",
                 "--real-copies", "0", "--annotate-budget-s", "60"),
          full=("--sizes", "100000,1000000,10000000", "--nx-sizes", "100000,1000000"), timeout_s=3600,
          quick_timeout_s=600),
    Bench("sampler", "value-guided walks: paths/s vs igraph and plain Python, coverage vs uniform walks",
          quick=("--seeds", "50000", "--kps", "10000", "--paths", "20000", "--batch", "8192", "--igraph-walks", "10",
                 "--python-walks", "200"), timeout_s=3600, quick_timeout_s=600),
    Bench("synth", "synth stage vs direct requests to a real server; orchestration ceiling; sink",
          quick=("--quick", "--paths", "4", "--max-tokens", "32"), timeout_s=3600, quick_timeout_s=900),
    Bench("extract", "annotators: speed and label agreement on real seeds; keyphrase v2 vs frozen v1",
          quick=("--seeds", "20", "--throughput-seeds", "200", "--slow-seeds", "16", "--no-hf"),
          timeout_s=3600, quick_timeout_s=900),
    Bench("kp_quality", "KP quality per language (CMMLU dev, MMLU/MATH): keyphrase and embedded LLM vs the code "
          "before issue 16; keyphrase throughput",
          quick=("--en-seeds", "40", "--zh-seeds", "40", "--throughput-seeds", "200", "--no-llm"),
          timeout_s=3600, quick_timeout_s=900),
    Bench("llm", "CPU LLM engines on SmolLM2-135M: tokens/s vs hf batch 1",
          quick=("--n", "4", "--max-tokens", "16", "--engines", "hf1,llamacpp,server"), timeout_s=3600,
          quick_timeout_s=900),
    Bench("trainer", "TrainingRun tokens/s vs a plain torch loop; packing efficiency",
          quick=("--steps", "2", "--warmup", "1", "--seq-len", "128", "--micro-batch", "2", "--records", "200"),
          timeout_s=1800, quick_timeout_s=600),
    Bench("probe", "probe scoring questions/s vs the previous scoring code (and bf16 vs fp32)",
          quick=("--questions", "16"), full=("--bf16",), timeout_s=1800, quick_timeout_s=600),
    Bench("scale", "the sink to 10M records: records/s and RSS per size, 1 vs 2 replicas, restart with full state, "
          "near-dup recall/precision (stream, + global pass) vs one in-memory index, bytes per record per topic, "
          "the sink on Kafka (Tansu)", quick=("--quick",), timeout_s=7200, quick_timeout_s=900),
    Bench("html_report", "the HTML report of a 10,000-seed graph and 100,000 rows: size, Chromium load vs a blank page",
          quick=("--seeds", "2000", "--rows", "5000", "--repeat", "2"), timeout_s=900, quick_timeout_s=300),
)


@dataclass
class BenchRun:
    """The outcome of one bench in this run."""

    name: str
    command: str
    status: str
    """ok | failed | timed out"""
    what: str = ""
    returncode: int | None = None
    wall_s: float = 0.0
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reason: str = ""
    """Why it failed, or why it has no figures."""
    stdout_tail: str = ""
    stderr_tail: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["figures"] = [f.to_dict() for f in self.figures]
        return d


# ---- the machine ----------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _gpus() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return "; ".join(names) if out.returncode == 0 and names else "none"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict:
    """What the figures depend on, read without importing the heavy libraries (versions from package metadata)."""
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gib": _ram_gib(),
        "gpu": _gpus(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("torch", "numpy", "igraph", "transformers", "llama_cpp_python",
                                              "kafka-python", "protobuf")},
        "niceness": os.nice(0),
        "load_average": os.getloadavg(),
    }


def git_state() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    changed = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD") or "unknown", "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "uncommitted_changes": bool(changed)}


def this_command() -> str:
    exe = Path(sys.executable)
    try:
        exe = exe.relative_to(Path.cwd())
    except ValueError:
        pass
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(Path.cwd())
    except ValueError:
        pass
    nice = os.nice(0)
    return (f"nice -n {nice} " if nice else "") + shlex.join([str(exe), str(script), *sys.argv[1:]])


# ---- running ---------------------------------------------------------------------------------------------------


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the bench's process group, SIGKILL after 30 s; waits for the bench itself."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_bench(bench: Bench, quick: bool, timeout_s: float | None, out_dir: Path, echo: bool = True) -> BenchRun:
    """Run one bench in its own process group (so a timeout also ends what it started: broker, LLM server,
    workers), echoing its stdout with a prefix, and read its figures."""
    args = list(bench.quick if quick else bench.full)
    shown = shlex.join([os.path.relpath(sys.executable, ROOT), f"bench/{bench.name}.py", *args])
    json_path = None
    if bench.writes_json():
        fd, name = tempfile.mkstemp(prefix=f"bench-{bench.name}-", suffix=".json")
        os.close(fd)
        json_path = Path(name)
        json_path.unlink()  # present afterwards only if the bench wrote it
        args += ["--json", str(json_path)]
    cmd = [sys.executable, str(bench.script), *args]
    limit = timeout_s or (bench.quick_timeout_s if quick else bench.timeout_s)
    run = BenchRun(bench.name, shown, "ok", bench.what, load_before=os.getloadavg())
    log = out_dir / f"run_all-{bench.name}.log"
    out_lines: list[str] = []
    err_lines: list[str] = []

    def pump(stream, sink: list[str], prefix: str | None) -> None:
        for line in stream:
            sink.append(line)
            if prefix is not None:
                sys.stdout.write(prefix + line)
                sys.stdout.flush()

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    readers = [threading.Thread(target=pump, args=(proc.stdout, out_lines, f"[{bench.name}] " if echo else None)),
               threading.Thread(target=pump, args=(proc.stderr, err_lines, None))]
    for r in readers:
        r.start()
    try:
        run.returncode = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        run.status, run.returncode = "timed out", proc.returncode
        run.reason = f"still running after {limit:.0f} s (the run's per-bench timeout); stopped"
    except BaseException:  # Ctrl-C: the bench is in its own session, so it did not get the signal
        stop_group(proc)
        raise
    stop_group(proc)  # anything the bench left running (a broker, a server) after it exited
    for r in readers:
        r.join(timeout=30)
    run.wall_s = time.perf_counter() - started
    run.load_after = os.getloadavg()
    stdout, stderr = "".join(out_lines), "".join(err_lines)
    log.write_text(f"$ {shlex.join(cmd)}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")
    run.stdout_tail = _tail(stdout, 150)
    if run.status == "ok" and run.returncode != 0:
        run.status, run.reason = "failed", f"exit status {run.returncode}"
    if run.status != "ok":
        run.stderr_tail = _tail(stderr, 25)
    if json_path is not None and json_path.exists():
        try:
            got = read_json(json_path)
            run.figures, run.notes = got.figures, got.notes
        except (ValueError, TypeError, KeyError) as e:
            run.status, run.reason = "failed", f"its --json file could not be read: {e!r}"
        json_path.unlink()
    elif run.status == "ok":
        run.reason = ("the bench wrote no figures (its script has no --json option yet): its output is below"
                      if json_path is None else "the bench exited 0 but wrote no figures: its output is below")
    return run


# ---- the report ------------------------------------------------------------------------------------------------


def fmt(x: float | None) -> str:
    if x is None:
        return "—"
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if a >= 0.01 or a == 0:
        return f"{x:.3f}"
    if a >= 0.0001:
        return f"{x:.4f}"
    return f"{x:.2e}"


def fmt_value(x: float | None, unit: str) -> str:
    if x is None:
        return "—"
    if unit == "share":
        return f"{x:.1%}"
    return f"{fmt(x)} {unit}".strip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def figure_row(f: Figure) -> str:
    if f.skipped is not None:
        value = f"skipped: {f.skipped}"
    else:
        value = fmt_value(f.value, f.unit)
    baseline = "—"
    if f.baseline_name or f.baseline_value is not None:
        baseline = f"{fmt_value(f.baseline_value, f.unit)} ({f.baseline_name})" if f.baseline_value is not None \
            else f"({f.baseline_name})"
    ratio = f"{fmt(f.ratio)}x" if f.ratio is not None else "—"
    aim = f.aim.text(f.unit) if f.aim else "—"
    met = {True: "yes", False: "**no**", None: "—"}[f.met]
    return "| " + " | ".join(_cell(c) for c in (f.name, value, baseline, ratio, aim, met, f.note)) + " |"


def _load(t: tuple[float, float, float] | None) -> str:
    return " / ".join(f"{x:.2f}" for x in t) if t else "?"


def aims_summary(figures: list[Figure]) -> str:
    judged = [f.met for f in figures if f.met is not None]
    return f"{sum(judged)}/{len(judged)}" if judged else "—"


def render_markdown(report: dict, runs: list[BenchRun]) -> str:
    """RESULTS.md from the run's header (machine, date, git, command) and the benches' outcomes."""
    m, g = report["machine"], report["git"]
    v = m["versions"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `bench/run_all.py` on {report['date']} "
        f"({'quick smoke run: small sizes, not the figures to quote' if report['quick'] else 'full run'}).",
        "Reproduce with one command from the repository root:",
        "",
        "```bash",
        report["command"],
        "```",
        "",
        "Ratios compare against a baseline measured in the same process, so they travel between machines better",
        "than absolute rates; the load average before and after each bench says how busy the machine was.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cpus']} CPUs ({m['cpus_usable']} usable by this process)",
        f"- RAM: {m['ram_gib']:.1f} GiB" if m.get("ram_gib") else "- RAM: unknown",
        f"- GPU: {m['gpu']}",
        f"- OS: {m['os']}; Python {m['python']}; " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- niceness {m['niceness']}; load average (1/5/15 min) at the start: {_load(m['load_average'])}",
        f"- git: {g['commit']} ({g['branch']}){' with uncommitted changes' if g['uncommitted_changes'] else ''}",
        f"- total wall time: {report['wall_s']:.0f} s",
        "",
        "## Summary",
        "",
        "| bench | status | wall s | figures | aims met | load before | load after |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        skipped = sum(f.skipped is not None for f in r.figures)
        figs = f"{len(r.figures) - skipped}" + (f" (+{skipped} skipped)" if skipped else "")
        lines.append(f"| [{r.name}](#{r.name}) | {r.status} | {r.wall_s:.0f} | {figs} | {aims_summary(r.figures)} | "
                     f"{_load(r.load_before)} | {_load(r.load_after)} |")
    if report.get("not_run"):
        lines += ["", "Not run (bench scripts run_all does not know; add them to `BENCHES` in bench/run_all.py): "
                  + ", ".join(f"`bench/{n}.py`" for n in report["not_run"])]
    for r in runs:
        lines += ["", f"## {r.name}", ""] + ([r.what, ""] if r.what else [])
        lines += [f"`{r.command}` — {r.status}"
                  + (f" (exit status {r.returncode})" if r.returncode not in (0, None) else "")
                  + f", {r.wall_s:.0f} s, load average {_load(r.load_before)} before, {_load(r.load_after)} after", ""]
        if r.reason:
            lines += [f"**{'Failed' if r.status != 'ok' else 'Note'}:** {r.reason}", ""]
        if r.stderr_tail:
            lines += ["stderr (last lines):", "", "```", r.stderr_tail, "```", ""]
        if r.figures:
            lines += ["| figure | value | baseline | ratio | aim | met? | note |", "|---|---|---|---|---|---|---|"]
            lines += [figure_row(f) for f in r.figures]
            lines.append("")
        skipped = [f for f in r.figures if f.skipped is not None]
        if skipped:
            lines += ["Skipped here: " + "; ".join(f"{f.name} ({f.skipped})" for f in skipped), ""]
        for n in r.notes:
            lines.append(f"- {n}")
        if r.notes:
            lines.append("")
        if r.stdout_tail:
            lines += ["<details><summary>output</summary>", "", "```", r.stdout_tail, "```", "", "</details>"]
    return "\n".join(lines).rstrip() + "\n"


def unknown_benches() -> list[str]:
    known = {b.name for b in BENCHES}
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if p.stem not in known | NOT_BENCHES)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few minutes")
    ap.add_argument("--only", default=None, metavar="A,B", help="run only these benches (names as in bench/)")
    ap.add_argument("--timeout", type=float, default=None, metavar="S",
                    help="per-bench timeout in seconds (default: each bench's own, see --list)")
    ap.add_argument("--out", type=Path, default=BENCH_DIR, metavar="DIR",
                    help="where RESULTS.md, results.json and the logs go (default: bench/)")
    ap.add_argument("--list", action="store_true", help="list the benches with their options and timeouts, run none")
    args = ap.parse_args(argv)

    benches = list(BENCHES)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in {b.name for b in BENCHES}]
        if unknown:
            ap.error(f"--only: unknown bench(es) {', '.join(unknown)}; known: {', '.join(b.name for b in BENCHES)}")
        benches = [b for b in BENCHES if b.name in wanted]
    if args.list:
        for b in benches:
            print(f"{b.name:13s} {b.what}\n{'':13s} quick: {shlex.join(b.quick)} (timeout {b.quick_timeout_s:.0f} s)"
                  f"\n{'':13s} full:  {shlex.join(b.full) or '(defaults)'} (timeout {b.timeout_s:.0f} s)"
                  f"{'' if b.writes_json() else chr(10) + ' ' * 14 + 'no --json option yet: output only'}")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": this_command(),
              "quick": args.quick, "machine": machine_info(), "git": git_state(),
              "not_run": unknown_benches() if not args.only else [], "wall_s": 0.0}
    started = time.perf_counter()
    runs: list[BenchRun] = []
    for b in benches:
        print(f"== {b.name}: {b.what}", flush=True)
        r = run_bench(b, args.quick, args.timeout, args.out)
        runs.append(r)
        print(f"== {b.name}: {r.status} in {r.wall_s:.0f} s{': ' + r.reason if r.reason else ''}", flush=True)
        report["wall_s"] = time.perf_counter() - started
        # Written after every bench, so an interrupted run still leaves what it measured.
        (args.out / "RESULTS.md").write_text(render_markdown(report, runs))
        (args.out / "results.json").write_text(json.dumps({**report, "benches": [x.to_dict() for x in runs]},
                                                          indent=1, default=float) + "\n")
    print(f"wrote {args.out / 'RESULTS.md'} and {args.out / 'results.json'} ({report['wall_s']:.0f} s in all)")
    return 0 if all(r.status == "ok" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
