"""Synth and sink throughput. One command: `.venv/bin/python bench/synth.py` (add `--quick` for a short run).

1. LLM pass-through (needs the packaged SmolLM2): a real OpenAI-compatible server on loopback
   (tests.tooling.llm_server) serves the model; the same prompts (greedy, same max_tokens) go
   (a) straight to the server with httpx at concurrency C, and (b) through the synth stage (SynthStage.process with
   the `openai` backend at max_concurrency C). Reported: completion tokens/s of each and the ratio (aim >= 0.95).
2. Orchestration ceiling: the synth stage with an LLM that answers instantly: paths/s and SynthQA/s with
   generation time excluded.
3. Sink: SinkStage.process on 100K synthetic SynthQA records (with planted duplicates), exact + near-dup +
   decontamination against the real eval sets in ../shared/data when present (else the test fixtures), shard
   writes included: records/s. Baselines in the same process: MinHash signatures with datasketch's per-record
   `MinHash.update_batch` vs our compiled batch signatures; datasketch's MinHashLSH vs our LSH window.
   (bench/scale.py measures the sink as records grow to 10M and with replicas.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LINKSYN_SHARED_DATA", REPO.parent / "shared" / "data"))

from linksyn.common import modes  # noqa: E402
from linksyn.common.bus.base import Message  # noqa: E402
from linksyn.common.llm.base import LLM, ChatRequest, Completion  # noqa: E402
from linksyn.sink.config import EvalSetConfig, SinkConfig  # noqa: E402
from linksyn.sink.stage import SinkStage  # noqa: E402
from linksyn.synth.config import SynthConfig  # noqa: E402
from linksyn.synth.stage import SynthStage  # noqa: E402
from linksyn.synth.synthesis import Synthesizer, synth_qa_id  # noqa: E402
from linksyn.v1 import records_pb2  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Aim, Figure, add_json_option, write_json  # noqa: E402

WORDS = ("apple orange river mountain engine number circle force energy planet atom cell market price triangle "
         "angle vector matrix charge field wave light sound heat gas liquid solid metal salt acid tree leaf root "
         "seed bird fish horse train ship plane road bridge tower city village king law theorem proof integral "
         "derivative limit series prime factor ratio speed mass volume density pressure current voltage").split()


# -- inputs ---------------------------------------------------------------------------------------------------

def gsm8k_paths(n: int, seeds_per_path: int = 2, mode: str = "link") -> list[records_pb2.WalkPath]:
    """Paths over real GSM8K seeds when the shared data is there, else over generated arithmetic seeds."""
    src = SHARED / "seeds" / "gsm8k" / "train.jsonl"
    rows: list[dict] = []
    if src.is_file():
        with open(src) as fh:
            for line in fh:
                rows.append(json.loads(line))
                if len(rows) >= n * seeds_per_path:
                    break
    rng = random.Random(0)
    while len(rows) < n * seeds_per_path:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        rows.append({"question": f"A shop has {a} boxes with {b} pens each. How many pens?", "answer": f"#### {a * b}"})
    paths = []
    for i in range(n):
        group = rows[i * seeds_per_path : (i + 1) * seeds_per_path]
        seeds = [records_pb2.PathSeed(id=f"s{i}-{j}", question=r["question"], answer=r["answer"],
                                      kps=["arithmetic"], discipline="mathematics", difficulty=2)
                 for j, r in enumerate(group)]
        paths.append(records_pb2.WalkPath(id=f"p{i}", kps=["arithmetic", "word problems"], seeds=seeds,
                                          mode=modes.mode_value(mode),
                                          target_discipline="mathematics", target_difficulty=2))
    return paths


def messages(topic: str, values: Sequence[bytes], start: int = 0) -> list[Message]:
    return [Message(topic, 0, start + i, None, v) for i, v in enumerate(values)]


# -- 1. pass-through against a real server --------------------------------------------------------------------

def bench_passthrough(n_paths: int, concurrency: int, max_tokens: int) -> dict:
    import httpx
    from linksyn.common.llm import load_llm

    from tests.tooling.llm_server import (
        INSTALL_HINT,
        LocalOpenAIServer,
        server_available,
    )

    if not server_available():
        raise SystemExit(f"cannot run the pass-through part: {INSTALL_HINT} (or pass --skip-server)")
    server = LocalOpenAIServer().start()  # the packaged SmolLM2 on a free loopback port
    try:
        base_url, model = server.base_url, server.model_name
        cfg = SynthConfig(temperature=0.0, max_tokens=max_tokens, lang="en")
        cfg.llm.max_concurrency = concurrency
        llm = load_llm(f"openai:{base_url}#{model}", cfg.llm)
        synth = Synthesizer(cfg, llm)
        paths = gsm8k_paths(n_paths)
        requests = [d.request for p in paths for d in synth.plan(p)]

        # warm-up (model load, first-request costs) outside both timings
        llm.generate(requests[:2])

        from linksyn.common.llm.openai import request_body

        mode = llm.structured_mode  # settled by the warm-up: the direct requests send exactly the same bodies

        def direct(req: ChatRequest) -> int:
            body = request_body(model, req, mode)
            r = client.post(f"{base_url}/chat/completions", json=body)
            r.raise_for_status()
            return int(r.json()["usage"]["completion_tokens"])

        with httpx.Client(timeout=600, limits=httpx.Limits(max_connections=concurrency), trust_env=False) as client:
            with ThreadPoolExecutor(concurrency) as pool:
                t0 = time.perf_counter()
                direct_tokens = sum(pool.map(direct, requests))
                direct_s = time.perf_counter() - t0

        stage = SynthStage(synth, "paths", "synth-qa", name="bench-synth")
        values = [p.SerializeToString() for p in paths]
        t0 = time.perf_counter()
        results = stage.process(messages("paths", values))
        stage_s = time.perf_counter() - t0
        stage_tokens = stage.totals["completion_tokens"]
        llm.close()
        return {
            "requests": len(requests), "concurrency": concurrency,
            "direct_completion_tokens": direct_tokens, "direct_s": direct_s,
            "direct_tokens_per_s": direct_tokens / direct_s,
            "stage_completion_tokens": stage_tokens, "stage_s": stage_s,
            "stage_tokens_per_s": stage_tokens / stage_s,
            "ratio": (stage_tokens / stage_s) / (direct_tokens / direct_s),
            "stage_qa": sum(len(r.outputs) for r in results),
            "stage_failed": sum(r.error is not None for r in results),
        }
    finally:
        server.stop()


# -- 2. orchestration ceiling ---------------------------------------------------------------------------------

class InstantLLM(LLM):
    """Answers every request at once with a valid, distinct reply (no generation time)."""

    model_name = "instant"

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        out = []
        for r in requests:
            self.n += 1
            if ":rate" in r.request_id:
                text = '{"difficulty": 5}'
            else:
                text = json.dumps({"question": f"How many pens are in {self.n} boxes of 12 pens, then 3 more?",
                                   "answer": f"#### {self.n * 12 + 3}", "rationale": "multiply, then add",
                                   "knowledge_points": ["multiplication"], "discipline": "mathematics",
                                   "difficulty": 2})
            out.append(Completion(text=text, prompt_tokens=300, completion_tokens=60, finish_reason="stop"))
        return out


def bench_orchestration(n_paths: int, batch: int) -> dict:
    out = {}
    for mode in ("link", "multi_grade", "hard"):
        stage = SynthStage(Synthesizer(SynthConfig(lang="en"), InstantLLM()), "paths", "synth-qa",
                           name=f"bench-{mode}")
        values = [p.SerializeToString() for p in gsm8k_paths(n_paths, mode=mode)]
        t0 = time.perf_counter()
        produced = 0
        for i in range(0, len(values), batch):
            produced += sum(len(r.outputs) for r in stage.process(messages("paths", values[i : i + batch], i)))
        s = time.perf_counter() - t0
        out[mode] = {"paths_per_s": n_paths / s, "qa_per_s": produced / s, "qa": produced}
    return out


# -- 3. sink --------------------------------------------------------------------------------------------------

def synthetic_qas(n: int, dup_share: float = 0.05, near_share: float = 0.05) -> list[records_pb2.SynthQA]:
    rng = random.Random(1)
    qs: list[str] = []
    for i in range(n):
        r = rng.random()
        if qs and r < dup_share:
            qs.append(rng.choice(qs).upper())
        elif qs and r < dup_share + near_share:
            base = rng.choice(qs).split()
            base[rng.randrange(len(base))] = "zebra"
            qs.append(" ".join(base))
        else:
            qs.append(" ".join(rng.choices(WORDS, k=rng.randint(15, 40))) + f" (item {i})?")
    return [
        records_pb2.SynthQA(id=synth_qa_id(q, str(i)), question=q, answer=str(i), kps=["kp"], discipline="mathematics",
                            difficulty=1 + i % 5, path_id=f"p{i}", source_seed_ids=[f"s{i}"], models=["m"],
                            prompt_version="link-v1", prompt_tokens=300, completion_tokens=60, mode=modes.LINK, lang="en")
        for i, q in enumerate(qs)
    ]


def eval_sets() -> list[EvalSetConfig]:
    ev = SHARED / "eval"
    if (ev / "mmlu" / "test").is_dir():
        return [EvalSetConfig(kind="mmlu", path=str(ev / "mmlu" / "test")),
                EvalSetConfig(kind="cmmlu", path=str(ev / "cmmlu" / "data" / "test")),
                EvalSetConfig(kind="gsm8k", path=str(ev / "gsm8k" / "test.jsonl"))]
    print(f"  (no shared eval data at {ev}: decontaminating against the test fixtures)")
    fx = REPO / "tests" / "sink" / "fixtures"
    return [EvalSetConfig(kind="mmlu", path=str(fx / "mmlu_test")), EvalSetConfig(kind="gsm8k", path=str(fx / "gsm8k_test.jsonl"))]


def bench_sink(n: int, batch: int) -> dict:
    from datasketch import MinHash
    from linksyn.common.ids import question_key
    from linksyn.common.text import word_tokens
    from linksyn.sink.dedup import MinHasher
    from linksyn.sink.tokens import text_words

    qas = synthetic_qas(n)
    values = [q.SerializeToString() for q in qas]
    keys = [question_key(q.question) for q in qas]  # the synth-qa key contract (else the sink re-keys them)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        stage = SinkStage(SinkConfig(output_dir=f"{tmp}/ds", eval_sets=eval_sets(), shard_records=50_000), "synth-qa",
                          name="bench-sink")
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            stage.process([Message("synth-qa", 0, i + j, keys[i + j], v) for j, v in enumerate(values[i : i + batch])])
        stage.close()
        sink_s = time.perf_counter() - t0
        totals = stage.totals
    # Baseline: per-record datasketch MinHash on the same shingles, vs our batch signatures.
    sample = [q.question for q in qas[:5000]]
    t0 = time.perf_counter()
    for text in sample:
        w = word_tokens(text)
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([" ".join(w[i : i + 3]).encode() for i in range(max(1, len(w) - 2))])
    base_s = time.perf_counter() - t0
    hasher = MinHasher(128, 3)

    def signatures(texts: list[str]):
        w = text_words(texts)
        return hasher.signatures(w.hashes, w.owners, len(texts))

    t0 = time.perf_counter()
    for i in range(0, len(sample), batch):
        signatures(sample[i : i + batch])
    ours_s = time.perf_counter() - t0
    # Baseline: datasketch's MinHashLSH (per-record insert/query in Python) vs our compiled window (made as large as
    # the stream, so it holds every record as datasketch's does).
    import numpy as np
    from datasketch import LeanMinHash, MinHashLSH
    from linksyn.sink.dedup import NearDupWindow, short_signatures

    sigs = signatures([q.question for q in qas[:20_000]])
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    t0 = time.perf_counter()
    for i, sig in enumerate(sigs):
        m = LeanMinHash(seed=1, hashvalues=sig, scheme="affine32")
        if not lsh.query(m):
            lsh.insert(i, m, check_duplication=False)
    ds_lsh_s = time.perf_counter() - t0
    window = NearDupWindow(2 * len(sigs), 0.8, 128)
    t0 = time.perf_counter()
    window.screen(window.keys(sigs), short_signatures(sigs), np.ones(len(sigs), dtype=bool))
    our_lsh_s = time.perf_counter() - t0
    return {
        "lsh_datasketch_per_s": len(sigs) / ds_lsh_s, "lsh_banded_per_s": len(sigs) / our_lsh_s,
        "lsh_speedup": ds_lsh_s / our_lsh_s,
        "records": n, "kept": totals.records, "dropped": dict(totals.dropped), "index_setup_s": setup_s,
        "sink_s": sink_s, "records_per_s": n / sink_s,
        "minhash_datasketch_per_record_per_s": len(sample) / base_s, "minhash_batched_per_s": len(sample) / ours_s,
        "minhash_speedup": base_s / ours_s,
    }


PASSTHROUGH_AIM = Aim(">=", 0.95, on="ratio")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--skip-server", action="store_true", help="skip the real-server pass-through part")
    ap.add_argument("--only-server", action="store_true", help="run the real-server pass-through part alone")
    ap.add_argument("--paths", type=int, default=None, help="paths for the pass-through part")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--sink-records", type=int, default=None)
    add_json_option(ap)
    a = ap.parse_args()
    quick = a.quick
    report: dict = {}
    figures: list[Figure] = []
    if not a.only_server:
        print("== orchestration ceiling (instant LLM) ==")
        report["orchestration"] = bench_orchestration(500 if quick else 5000, 64)
        for mode, r in report["orchestration"].items():
            print(f"  {mode:12s} {r['paths_per_s']:9.0f} paths/s  {r['qa_per_s']:9.0f} SynthQA/s")
            figures.append(Figure(f"synth stage, instant LLM, {mode}: paths/s", r["paths_per_s"], "paths/s",
                                  note=f"{r['qa_per_s']:.0f} SynthQA/s; generation time excluded"))
        print("== sink: dedup + near-dup + decontamination + shards ==")
        n = a.sink_records or (10_000 if quick else 100_000)
        s = report["sink"] = bench_sink(n, 500)
        print(f"  {s['records']} records -> {s['kept']} kept, dropped {s['dropped']}; "
              f"index setup {s['index_setup_s']:.1f} s")
        print(f"  sink: {s['records_per_s']:.0f} records/s ({s['sink_s']:.1f} s)")
        print(f"  MinHash signatures: batched {s['minhash_batched_per_s']:.0f}/s vs datasketch per-record "
              f"{s['minhash_datasketch_per_record_per_s']:.0f}/s (x{s['minhash_speedup']:.1f})")
        print(f"  LSH query+insert: compiled window {s['lsh_banded_per_s']:.0f}/s vs datasketch MinHashLSH "
              f"{s['lsh_datasketch_per_s']:.0f}/s (x{s['lsh_speedup']:.1f})")
        figures += [
            Figure("sink: dedup + near-dup + decontamination + shards", s["records_per_s"], "records/s",
                   note=f"{s['records']} records -> {s['kept']} kept, dropped {s['dropped']}; "
                        f"index setup {s['index_setup_s']:.1f} s"),
            Figure("MinHash signatures, batched", s["minhash_batched_per_s"], "records/s",
                   "datasketch MinHash per record", s["minhash_datasketch_per_record_per_s"]),
            Figure("LSH query + insert, compiled window", s["lsh_banded_per_s"], "records/s", "datasketch MinHashLSH",
                   s["lsh_datasketch_per_s"]),
        ]
    passthrough_name = "synth stage completion tokens/s, real OpenAI-compatible server"
    if a.skip_server and not a.only_server:
        figures.append(Figure.skip(passthrough_name, "--skip-server", "tokens/s", PASSTHROUGH_AIM))
    else:
        print("== pass-through: synth stage vs direct requests to a real OpenAI-compatible server ==")
        from tests.tooling.llm_server import INSTALL_HINT, server_available

        if not server_available():
            # The other parts are measured already: say why this one is missing instead of failing the run.
            print(f"  skipped: {INSTALL_HINT}")
            figures.append(Figure.skip(passthrough_name, INSTALL_HINT, "tokens/s", PASSTHROUGH_AIM))
            if a.json:
                write_json(a.json, figures)
            print(json.dumps(report, indent=1, default=float), file=sys.stderr)
            return
        p = report["passthrough"] = bench_passthrough(a.paths or (8 if quick else 32), a.concurrency, a.max_tokens)
        print(f"  {p['requests']} requests at concurrency {p['concurrency']}")
        print(f"  direct: {p['direct_completion_tokens']} completion tokens in {p['direct_s']:.1f} s = "
              f"{p['direct_tokens_per_s']:.1f} tok/s")
        print(f"  stage:  {p['stage_completion_tokens']} completion tokens in {p['stage_s']:.1f} s = "
              f"{p['stage_tokens_per_s']:.1f} tok/s ({p['stage_qa']} SynthQA, {p['stage_failed']} paths failed)")
        print(f"  ratio stage/direct: {p['ratio']:.3f} (aim >= 0.95)")
        figures.append(Figure(passthrough_name, p["stage_tokens_per_s"], "tokens/s", "direct httpx requests",
                              p["direct_tokens_per_s"], ratio=p["ratio"], aim=PASSTHROUGH_AIM,
                              note=f"{p['requests']} requests at concurrency {p['concurrency']}; {p['stage_qa']} "
                                   f"SynthQA, {p['stage_failed']} paths failed"))
    if a.json:
        write_json(a.json, figures)
    print(json.dumps(report, indent=1, default=float), file=sys.stderr)


if __name__ == "__main__":
    main()
