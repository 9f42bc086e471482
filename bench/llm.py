"""Raw throughput of the CPU LLM engines on the packaged SmolLM2-135M, on the same prompts.

    .venv/bin/python bench/llm.py [--n 32] [--max-tokens 64] [--no-schema] [--threads 2] [--engines hf1,hf16,llamacpp,server]

Prints requests/s and completion tokens/s for: hf at batch 1 (the baseline), hf at batch 16, llama.cpp in-process,
and llama.cpp's OpenAI-compatible server through the `openai` backend (16 in flight), with ratios against hf batch 1
measured in the same process. Prompts: MMLU dev questions from ../shared/data when present, else a built-in list.
With a schema (default) every reply is constrained to the extractor's JSON shape and validated.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from linksyn.common.llm import load_llm  # noqa: E402
from linksyn.common.llm.base import ChatRequest, SamplingParams  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Figure, add_json_option, write_json  # noqa: E402

SCHEMA = {
    "type": "object",
    "properties": {
        "knowledge_points": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 40},
                             "minItems": 1, "maxItems": 4},
        "discipline": {"type": "string", "maxLength": 30},
        "difficulty": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
    },
    "required": ["knowledge_points", "discipline", "difficulty"],
    "additionalProperties": False,
}

BUILTIN = [
    "What is 2+2?", "Why is the sky blue?", "Solve for x: 3x + 7 = 22.", "What is the capital of Australia?",
    "Explain Newton's second law.", "What is a prime number?", "Who painted the Mona Lisa?",
    "What does DNA stand for?", "How many sides does a hexagon have?", "What is the boiling point of water in Kelvin?",
    "Define opportunity cost.", "What is photosynthesis?", "Name the largest planet in the solar system.",
    "What is the derivative of sin(x)?", "What causes tides?", "What is the Pythagorean theorem?",
]


def questions(n: int) -> list[str]:
    data = Path(os.environ.get("LINKSYN_SHARED_DATA", REPO.parent / "shared" / "data")) / "seeds" / "mmlu" / "dev"
    found: list[str] = []
    if data.is_dir():
        for f in sorted(data.glob("*.csv")):
            with f.open(newline="", encoding="utf-8") as fh:
                for row in csv.reader(fh):
                    found.append(f"{row[0]}\nA. {row[1]}\nB. {row[2]}\nC. {row[3]}\nD. {row[4]}")
                    break  # one per subject: varied prompts
            if len(found) >= n:
                break
    else:
        print(f"(no shared data at {data}; using built-in questions)")
    pool = found or BUILTIN
    return [pool[i % len(pool)] for i in range(n)]


def requests(n: int, max_tokens: int, schema: bool) -> list[ChatRequest]:
    system = ("Extract the knowledge points a question tests (short phrases), its discipline, and its difficulty "
              "from 1 (primary school) to 5 (graduate). Reply with JSON only.")
    return [
        ChatRequest(messages=({"role": "system", "content": system}, {"role": "user", "content": q}),
                    params=SamplingParams(max_tokens=max_tokens), json_schema=SCHEMA if schema else None,
                    request_id=str(i))
        for i, q in enumerate(questions(n))
    ]


def run(name: str, llm, reqs: list[ChatRequest], schema: bool) -> dict:
    llm.generate(reqs[:2])  # warm-up: grammar compile, first-call allocations
    started = time.perf_counter()
    out = llm.generate(reqs)
    seconds = time.perf_counter() - started
    failed = sum(not c.ok for c in out)
    valid = 0
    if schema:
        import jsonschema

        for c in out:
            try:
                jsonschema.validate(json.loads(c.text), SCHEMA)
                valid += 1
            except (ValueError, jsonschema.ValidationError):
                pass
    tokens = sum(c.completion_tokens for c in out)
    row = {"engine": name, "requests": len(reqs), "seconds": round(seconds, 2), "req_per_s": len(reqs) / seconds,
           "completion_tok_per_s": tokens / seconds, "completion_tokens": tokens, "failed": failed,
           "schema_valid": valid if schema else None}
    print(f"{name:>12}: {row['req_per_s']:7.2f} req/s  {row['completion_tok_per_s']:8.1f} tok/s  "
          f"({tokens} tokens in {seconds:.1f}s, failed {failed}" + (f", schema-valid {valid}/{len(reqs)})" if schema else ")"),
          flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32, help="requests per engine")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--no-schema", action="store_true", help="plain text instead of schema-constrained JSON")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch and llama.cpp")
    ap.add_argument("--engines", default="hf1,hf16,llamacpp,server")
    add_json_option(ap)
    args = ap.parse_args()
    schema = not args.no_schema
    reqs = requests(args.n, args.max_tokens, schema)
    engines = args.engines.split(",")
    opts = {"threads": args.threads} if args.threads else {}
    print(f"{args.n} requests, max_tokens {args.max_tokens}, schema {'on' if schema else 'off'}, "
          f"threads {args.threads or 'default'}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    rows = []
    skipped: dict[str, str] = {}
    if "hf1" in engines:
        rows.append(run("hf batch 1", load_llm("hf:embedded", device="cpu", batch_size=1, **opts), reqs, schema))
    if "hf16" in engines:
        rows.append(run("hf batch 16", load_llm("hf:embedded", device="cpu", batch_size=16, **opts), reqs, schema))
    if "llamacpp" in engines:
        try:
            rows.append(run("llamacpp", load_llm("llamacpp:embedded", **opts), reqs, schema))
        except ImportError as e:
            print(f"    llamacpp: skipped ({e})")
            skipped["llamacpp"] = str(e)
    if "server" in engines:
        from tests.tooling.llm_server import LocalOpenAIServer

        try:
            with LocalOpenAIServer(threads=args.threads) as server:
                llm = load_llm(server.spec, max_concurrency=16, request_timeout_s=600)
                rows.append(run("llama server", llm, reqs, schema))
                llm.close()
        except ImportError as e:
            print(f"    server: skipped ({e})")
            skipped["llama server"] = str(e)
    base = next((r for r in rows if r["engine"] == "hf batch 1"), None)
    if base:
        for r in rows:
            r["tok_per_s_vs_hf_batch1"] = r["completion_tok_per_s"] / base["completion_tok_per_s"]
            print(f"{r['engine']:>12}: x{r['tok_per_s_vs_hf_batch1']:.2f} tokens/s vs hf batch 1")
    if args.json:
        figures = [
            Figure(f"{r['engine']} completion tokens/s", r["completion_tok_per_s"], "tokens/s",
                   "hf batch 1" if base and r is not base else None,
                   base["completion_tok_per_s"] if base and r is not base else None,
                   note=f"{r['req_per_s']:.2f} req/s; {r['completion_tokens']} tokens in {r['seconds']} s; "
                        f"failed {r['failed']}"
                        + (f"; schema-valid {r['schema_valid']}/{r['requests']}" if schema else ""))
            for r in rows
        ] + [Figure.skip(f"{name} completion tokens/s", why, "tokens/s") for name, why in skipped.items()]
        names = {"hf1": "hf batch 1", "hf16": "hf batch 16", "llamacpp": "llamacpp", "server": "llama server"}
        figures += [Figure.skip(f"{name} completion tokens/s", "not in --engines", "tokens/s")
                    for key, name in names.items() if key not in engines]
        write_json(args.json, figures, [f"{args.n} requests per engine, max_tokens {args.max_tokens}, schema "
                                        f"{'on' if schema else 'off'}, threads {args.threads or 'default'}"])


if __name__ == "__main__":
    main()
