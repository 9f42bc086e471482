"""Synth and sink throughput. One command: `.venv/bin/python bench/synth.py` (add `--quick` for a short run).

1. LLM pass-through (needs the packaged SmolLM2): a real OpenAI-compatible server on loopback
   (tests.tooling.llm_server) serves the model; prompts of the same kind (link paths over GSM8K seeds, greedy, same
   max_tokens) go (a) straight to the server with httpx at concurrency C, and (b) through the synth stage
   (SynthStage.process with the `openai` backend at the same fixed concurrency C). Fair to both arms: in each round
   both arms send the same prompts (so they decode the same tokens: greedy, seeded), a fresh set every round, and
   the arms alternate which goes first; the figure is the median over rounds with its spread. Cache state:
   llama-cpp-python's server runs without its RAM prompt cache (--cache off, its default), so a prompt sent before
   is not remembered; its one context reuses only the common prefix with the prompt just before (the shared
   instruction), which every request of both arms gets alike. (With disjoint prompts per arm the arms decode
   different completions, whose lengths differ enough to swing a round's ratio by +-30% on a loaded machine.)
   Reported: completion tokens/s of each arm per round, the ratio stage/direct per round, its median and range
   (aim >= 0.95).
1b. Rate-limited endpoint: a token-bucket proxy (tests.tooling.rate_limit_proxy: R requests/s, 429 with
   Retry-After and retry-after-ms beyond that) in front of the same real server; records of one short request each
   go through the real consumer loop (retries, dead letters) with the `openai` backend at adaptive concurrency and at
   a fixed concurrency set too high. Reported: requests the proxy let through per second against what it allows
   (aim >= 0.9 for adaptive), 429s, client retries, records dead-lettered (aim 0 for adaptive).
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
import queue
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.tooling: the local llama.cpp server and the rate-limit proxy
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

def bench_passthrough(server, n_paths: int, concurrency: int, max_tokens: int, rounds: int) -> dict:
    import httpx
    from linksyn.common.llm import load_llm
    from linksyn.common.llm.openai import request_body

    base_url, model = server.base_url, server.model_name
    cfg = SynthConfig(temperature=0.0, max_tokens=max_tokens, lang="en")
    # Like for like: the stage at the direct arm's fixed concurrency (adaptive concurrency would change how many
    # requests the server holds at once, which is not the pass-through overhead under test).
    cfg.llm.max_concurrency, cfg.llm.concurrency = concurrency, "fixed"
    llm = load_llm(f"openai:{base_url}#{model}", cfg.llm)
    synth = Synthesizer(cfg, llm)
    # A fresh set of paths per round, the same for both arms of the round (the same prompts, the same replies).
    paths = gsm8k_paths(n_paths * rounds + 2)
    warm, paths = paths[:2], paths[2:]
    llm.generate([d.request for p in warm for d in synth.plan(p)])  # model load, first-request costs, schema mode
    mode = llm.structured_mode  # settled by the warm-up: the direct requests send the same kind of bodies

    def direct_arm(arm_paths: list) -> tuple[int, float]:
        requests = [d.request for p in arm_paths for d in synth.plan(p)]

        def one(req: ChatRequest) -> int:
            r = client.post(f"{base_url}/chat/completions", json=request_body(model, req, mode))
            r.raise_for_status()
            return int(r.json()["usage"]["completion_tokens"])

        with ThreadPoolExecutor(concurrency) as pool:
            t0 = time.perf_counter()
            tokens = sum(pool.map(one, requests))
            return tokens, time.perf_counter() - t0

    def stage_arm(arm_paths: list, k: int) -> tuple[int, float, int, int]:
        stage = SynthStage(synth, "paths", "synth-qa", name=f"bench-synth-{k}")
        t0 = time.perf_counter()
        results = stage.process(messages("paths", [p.SerializeToString() for p in arm_paths]))
        seconds = time.perf_counter() - t0
        return (stage.totals["completion_tokens"], seconds, sum(len(r.outputs) for r in results),
                sum(r.error is not None for r in results))

    out_rounds = []
    with httpx.Client(timeout=600, limits=httpx.Limits(max_connections=concurrency), trust_env=False) as client:
        for k in range(rounds):
            batch = paths[k * n_paths:(k + 1) * n_paths]
            first = "direct" if k % 2 == 0 else "stage"  # the arms alternate which goes first
            if first == "direct":
                d_tok, d_s = direct_arm(batch)
                s_tok, s_s, qa, failed = stage_arm(batch, k)
            else:
                s_tok, s_s, qa, failed = stage_arm(batch, k)
                d_tok, d_s = direct_arm(batch)
            r = {"first": first, "direct_tokens": d_tok, "direct_s": d_s, "direct_tokens_per_s": d_tok / d_s,
                 "stage_tokens": s_tok, "stage_s": s_s, "stage_tokens_per_s": s_tok / s_s,
                 "ratio": (s_tok / s_s) / (d_tok / d_s), "stage_qa": qa, "stage_failed": failed}
            print(f"  round {k + 1}/{rounds} ({first} first): direct {r['direct_tokens_per_s']:.1f} tok/s, "
                  f"stage {r['stage_tokens_per_s']:.1f} tok/s, ratio {r['ratio']:.3f}")
            out_rounds.append(r)
    llm.close()
    ratios = [r["ratio"] for r in out_rounds]
    return {
        "paths_per_arm": n_paths, "concurrency": concurrency, "max_tokens": max_tokens, "rounds": out_rounds,
        "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "direct_tokens_per_s": statistics.median(r["direct_tokens_per_s"] for r in out_rounds),
        "stage_tokens_per_s": statistics.median(r["stage_tokens_per_s"] for r in out_rounds),
        "cache": "llama-cpp-python server without its RAM prompt cache (a prompt sent before is not remembered); its "
                 "one context reuses the common prefix with the prompt just before, alike for every request of both "
                 "arms; both arms of a round send the same prompts, a fresh set each round, arms alternating first",
    }


# -- 1b. a rate-limited endpoint ------------------------------------------------------------------------------

class OneRequestStage:
    """One short chat request per record (streamed: a record is done when its own reply is in); a failed request
    fails its record, which the consumer loop retries and then dead-letters, as the synth's would be."""

    def __init__(self, llm, name: str, out_topic: str) -> None:
        self.llm = llm
        self.name = name
        self.input_topics = ["bench-requests"]
        self.out_topic = out_topic

    def process_stream(self, batch):
        from linksyn.common.bus.base import OutRecord
        from linksyn.common.llm.base import SamplingParams
        from linksyn.common.runtime.stage import Result

        futures = self.llm.submit([
            ChatRequest(messages=({"role": "user", "content": f"Say one word about item {m.value.decode()}."},),
                        params=SamplingParams(max_tokens=2), request_id=m.value.decode())
            for m in batch
        ])
        finished: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i, f in enumerate(futures):
            f.add_done_callback(lambda _f, i=i: finished.put(i))
        for _ in futures:
            i = finished.get()
            c = futures[i].result()
            yield i, (Result.ok(OutRecord(self.out_topic, c.text.encode())) if c.ok
                      else Result.failed(c.error or "failed", permanent=not c.retryable))


def bench_rate_limited(server, rate: float, records: int, high: int) -> dict:
    """The same records through the consumer loop against the token-bucket proxy: adaptive, then fixed at `high`."""
    import uuid

    from linksyn.common.bus.memory import InMemoryBus
    from linksyn.common.config import RetryConfig, RuntimeConfig, TopicsConfig
    from linksyn.common.llm import load_llm
    from linksyn.common.runtime.loop import ConsumerLoop
    from prometheus_client import REGISTRY

    from tests.tooling.rate_limit_proxy import RateLimitProxy

    arms = {"adaptive": {"concurrency": "adaptive", "max_concurrency": high},
            "fixed": {"concurrency": "fixed", "max_concurrency": high}}
    out: dict = {"rate": rate, "records": records, "high": high, "arms": {}}
    # The server's first requests are slow (allocation, warm caches): pay for them before either arm.
    warm = load_llm(server.spec)
    warm.generate([ChatRequest(messages=({"role": "user", "content": f"Say one word about warm-up {i}."},))
                   for i in range(4)])
    warm.close()
    with RateLimitProxy(server.base_url, rate=rate, burst=1) as proxy:
        for arm, options in arms.items():
            proxy.reset()
            service = f"bench-rl-{arm}-{uuid.uuid4().hex[:6]}"
            llm = load_llm(f"openai:{proxy.base_url}#{server.model_name}", service=service, **options)
            topics = TopicsConfig(dead_letter=f"dl-{service}")
            bus = InMemoryBus()
            bus.ensure_topics({"bench-requests": 1, f"out-{service}": 1, topics.dead_letter: 1})
            for i in range(records):
                bus.produce("bench-requests", f"{arm}-{i}".encode())
            runtime = RuntimeConfig(batch_size=16, batch_wait_s=0.05, workers=2, max_in_flight=64,
                                    retry=RetryConfig(max_attempts=3, backoff_initial_s=0.5, backoff_max_s=4.0))
            loop = ConsumerLoop(bus, OneRequestStage(llm, service, f"out-{service}"), runtime, topics,
                                group=service)
            t0, started = time.perf_counter(), time.monotonic()
            loop.start()
            while not loop.drained(timeout=2.0):
                time.sleep(0.2)
            wall = time.perf_counter() - t0
            # The arm's window at the proxy: from its start to the last request let through (what comes after,
            # the last reply and the drain check, is not the proxy's to allow).
            window = proxy.forwarded_at[-1] - started if proxy.forwarded_at else wall
            loop.stop()
            stats = loop.stats()
            (endpoint,) = llm.endpoints
            retries = sum(REGISTRY.get_sample_value("linksyn_llm_retries_total",
                                                    {"service": service, "model": llm.model_name, "reason": r}) or 0
                          for r in ("failed", "overloaded", "circuit_open"))
            dead = _dead_letter_errors(bus, topics.dead_letter, int(stats["dead_letters"]))
            forwarded = proxy.counts["forwarded"]
            allowed = 1 + rate * window  # a full bucket (burst 1) plus the refill over the arm's window
            out["arms"][arm] = {
                "wall_s": wall, "window_s": window, "forwarded": forwarded, "limited_429": proxy.counts["limited"],
                "forwarded_per_s": forwarded / window, "share_of_allowed": forwarded / allowed,
                "client_retries": retries, "record_retries": int(stats["retries"]),
                "dead_letters": int(stats["dead_letters"]), "dead_letters_429": sum("429" in e for e in dead),
                "done": int(stats["records_out"]), "final_limit": endpoint.limit.slots, "limit_cuts": endpoint.limit.cuts,
            }
            a = out["arms"][arm]
            print(f"  {arm:8s} (max {high}): {a['done']}/{records} done in {wall:.1f} s, proxy let through "
                  f"{a['forwarded_per_s']:.2f}/s of {rate:g}/s allowed ({a['share_of_allowed']:.1%}), "
                  f"{a['limited_429']} x 429, {a['client_retries']:.0f} client retries, {a['record_retries']} record "
                  f"retries, {a['dead_letters']} dead letters ({a['dead_letters_429']} for 429); final limit "
                  f"{a['final_limit']} after {a['limit_cuts']} cuts", flush=True)
            llm.close()
    return out


def _dead_letter_errors(bus, topic: str, n: int) -> list[str]:
    if not n:
        return []
    c = bus.consumer(f"dl-reader-{topic}", [topic])
    got: list[str] = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        for m in c.poll(max_records=500, timeout_s=0.5):
            got.append(records_pb2.DeadLetter.FromString(m.value).error)
    c.close()
    return got


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
        totals = stage.dataset_totals
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
RATE_AIM = Aim(">=", 0.9, on="ratio")
NO_DEAD_LETTERS = Aim("<=", 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--skip-server", action="store_true", help="skip the parts against the real server")
    ap.add_argument("--only-server", action="store_true", help="run the parts against the real server alone")
    ap.add_argument("--server-parts", choices=("both", "passthrough", "rate"), default="both",
                    help="which parts against the real server to run")
    ap.add_argument("--paths", type=int, default=None, help="paths per arm and round of the pass-through part")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of the pass-through part (arms alternate)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rate", type=float, default=0.5,
                    help="requests/s the rate-limit proxy allows (keep it under what the server can do)")
    ap.add_argument("--rate-records", type=int, default=None, help="records per arm of the rate-limited part")
    ap.add_argument("--rate-high", type=int, default=32, help="the fixed concurrency that is too high")
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
    passthrough_name = "synth stage completion tokens/s, real OpenAI-compatible server (median of rounds)"
    rate_name = "adaptive concurrency: requests/s through a rate-limited endpoint"
    dead_name = "adaptive concurrency: records dead-lettered behind a rate-limited endpoint"
    from tests.tooling.llm_server import INSTALL_HINT, LocalOpenAIServer, server_available

    why = "--skip-server" if a.skip_server and not a.only_server else None if server_available() else INSTALL_HINT
    if why:
        print(f"  parts against the real server skipped: {why}")
        figures += [Figure.skip(passthrough_name, why, "tokens/s", PASSTHROUGH_AIM),
                    Figure.skip(rate_name, why, "requests/s", RATE_AIM), Figure.skip(dead_name, why, "records")]
    else:
        with LocalOpenAIServer() as server:  # the packaged SmolLM2 on a free loopback port
            if a.server_parts in ("both", "passthrough"):
                print("== pass-through: synth stage vs direct requests to a real OpenAI-compatible server ==")
                p = report["passthrough"] = bench_passthrough(
                    server, a.paths or (4 if quick else 8), a.concurrency, a.max_tokens, a.rounds or (2 if quick else 4))
                print(f"  ratio stage/direct: median {p['ratio_median']:.3f} over {len(p['rounds'])} rounds "
                      f"(range {p['ratio_min']:.3f}-{p['ratio_max']:.3f}; aim >= 0.95); {p['cache']}")
                figures.append(Figure(
                    passthrough_name, p["stage_tokens_per_s"], "tokens/s", "direct httpx requests",
                    p["direct_tokens_per_s"], ratio=p["ratio_median"], aim=PASSTHROUGH_AIM,
                    note=f"{len(p['rounds'])} rounds of {p['paths_per_arm']} paths, both arms the same prompts, a fresh "
                         f"set per round, arms alternating first; ratio range {p['ratio_min']:.3f}-{p['ratio_max']:.3f}; "
                         f"concurrency {p['concurrency']}; server without RAM prompt cache"))
            if a.server_parts in ("both", "rate"):
                print(f"== rate-limited endpoint: token-bucket proxy at {a.rate:g} requests/s in front of the server ==")
                r = report["rate_limited"] = bench_rate_limited(
                    server, a.rate, a.rate_records or (20 if quick else 60), a.rate_high)
                ad, fx = r["arms"]["adaptive"], r["arms"]["fixed"]
                figures += [
                    Figure(rate_name, ad["forwarded_per_s"], "requests/s", "allowed by the proxy",
                           ad["forwarded_per_s"] / ad["share_of_allowed"], ratio=ad["share_of_allowed"], aim=RATE_AIM,
                           note=f"{ad['done']}/{r['records']} records in {ad['wall_s']:.0f} s, {ad['limited_429']} x 429, "
                                f"{ad['client_retries']:.0f} client retries, final limit {ad['final_limit']} (max "
                                f"{r['high']})"),
                    Figure(dead_name, ad["dead_letters"], "records", aim=NO_DEAD_LETTERS,
                           note=f"of which {ad['dead_letters_429']} for a 429"),
                    Figure(f"fixed concurrency {r['high']}: requests/s through the rate-limited endpoint",
                           fx["forwarded_per_s"], "requests/s", "allowed by the proxy",
                           fx["forwarded_per_s"] / fx["share_of_allowed"], ratio=fx["share_of_allowed"],
                           note=f"{fx['done']}/{r['records']} records done, {fx['dead_letters']} dead-lettered "
                                f"({fx['dead_letters_429']} for a 429), {fx['limited_429']} x 429, "
                                f"{fx['client_retries']:.0f} client retries, {fx['record_retries']} record retries"),
                ]
    if a.json:
        write_json(a.json, figures)
    print(json.dumps(report, indent=1, default=float), file=sys.stderr)


if __name__ == "__main__":
    main()
