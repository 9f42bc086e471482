"""Seeds/s through the extractor's decode step (`decode_messages(batch, linksyn.extractor.stage.decode_seed)`):
JSON seeds, as other producers write them, against Seed protobufs, as `linksyn push` writes them, in one process.

    .venv/bin/python bench/seed_decode.py [--records 50000] [--batch 64] [--repeat 5]

The same seeds in every format (~200-byte question/answer, subject, difficulty, source, lang; ids given), as the
consumer loop hands them to the stage: `Message` batches of --batch records. Formats: protobuf with push's
content-type header (the baseline), protobuf without a header (the bytes decide), JSON with the header, JSON
without it, JSON in Confluent schema-registry framing, and JSON of question and answer alone (the id is then hashed
from them and the language guessed, as the JSONL reader does: the README example's form). Each figure is the best
of --repeat interleaved passes over all records (CPU time of this thread, so a loaded machine skews it less); the
ratio is against the protobuf baseline of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linksyn.common.bus.base import Message  # noqa: E402
from linksyn.common.ids import content_id  # noqa: E402
from linksyn.common.runtime.stage import decode_messages  # noqa: E402
from linksyn.common.seeds.wire import JSON_CONTENT_TYPE, PROTOBUF_HEADERS  # noqa: E402
from linksyn.extractor.stage import decode_seed  # noqa: E402
from linksyn.v1 import records_pb2  # noqa: E402
from report import Figure, add_json_option, write_json  # noqa: E402

TOPIC = "linksyn.seeds"
JSON_HEADERS = (("content-type", JSON_CONTENT_TYPE.encode()),)


def seed_rows(n: int) -> list[dict]:
    """The seeds as canonical rows (the bus bench's seeds)."""
    rows = []
    for i in range(n):
        question = (f"A train leaves the station at {i % 24}:00 travelling at {40 + i % 60} km/h. How far has it "
                    f"gone after {1 + i % 9} hours?")
        answer = f"{(40 + i % 60) * (1 + i % 9)} km"
        rows.append({"id": content_id(question, answer), "question": question, "answer": answer,
                     "subject": "arithmetic", "difficulty": 1 + i % 5, "source": f"bench:{i}", "lang": "en"})
    return rows


def formats(rows: list[dict]) -> dict[str, list[tuple[bytes, tuple]]]:
    """Format name -> (value, headers) of every seed."""
    protos = [records_pb2.Seed(**r).SerializeToString() for r in rows]
    jsons = [json.dumps(r).encode() for r in rows]
    return {
        "protobuf + header": [(v, PROTOBUF_HEADERS) for v in protos],
        "protobuf, no header": [(v, ()) for v in protos],
        "JSON + header": [(v, JSON_HEADERS) for v in jsons],
        "JSON, no header": [(v, ()) for v in jsons],
        "JSON, Confluent framing": [(b"\x00\x00\x00\x00\x01" + v, ()) for v in jsons],
        "JSON + header, q + a only": [(json.dumps({"question": r["question"], "answer": r["answer"]}).encode(),
                                      JSON_HEADERS) for r in rows],
    }


def batches(records: list[tuple[bytes, tuple]], size: int) -> list[list[Message]]:
    msgs = [Message(TOPIC, i % 12, i, None, v, h) for i, (v, h) in enumerate(records)]
    return [msgs[i:i + size] for i in range(0, len(msgs), size)]


def one_pass(work: list[list[Message]]) -> float:
    """Records/s of one pass decoding every batch, from the CPU time of this thread (fails loudly if a record
    does not decode: the figure must be of seeds that went through)."""
    n = sum(len(b) for b in work)
    t0 = time.thread_time()
    for b in work:
        decoded = decode_messages(b, decode_seed)
        if decoded.failed:
            raise RuntimeError(f"bench record failed to decode: {next(iter(decoded.failed.values())).error}")
    return n / (time.thread_time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000, help="seeds per pass")
    ap.add_argument("--batch", type=int, default=64, help="records per batch (runtime.batch_size's default)")
    ap.add_argument("--repeat", type=int, default=5, help="passes; the best counts")
    add_json_option(ap)
    args = ap.parse_args()

    rows = seed_rows(args.records)
    by_format = formats(rows)
    sizes = {name: sum(len(v) for v, _ in recs) / len(recs) for name, recs in by_format.items()}
    print(f"seed decode bench: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {args.records:,} seeds in batches of {args.batch}, best of {args.repeat}")
    # Interleaved rounds, so a change of load during the run touches every format alike.
    rates: dict[str, float] = {name: 0.0 for name in by_format}
    work = {name: batches(recs, args.batch) for name, recs in by_format.items()}
    for _ in range(args.repeat):
        for name in by_format:
            rates[name] = max(rates[name], one_pass(work[name]))
    base_name = "protobuf + header"
    base = rates[base_name]
    print(f"{'format':<26}{'bytes':>7}{'seeds/s':>12}{'us/seed':>9}{'vs protobuf':>13}")
    for name, r in rates.items():
        print(f"{name:<26}{sizes[name]:>7.0f}{r:>12,.0f}{1e6 / r:>9.2f}{r / base:>12.2f}x")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (CPU time of the decoding thread is measured)")
    if args.json:
        figures = [Figure(f"decode, {base_name}", base, "seeds/s", note=f"{sizes[base_name]:.0f} bytes/seed")]
        figures += [Figure(f"decode, {name}", r, "seeds/s", baseline_name=f"decode, {base_name}", baseline_value=base,
                           note=f"{sizes[name]:.0f} bytes/seed")
                    for name, r in rates.items() if name != base_name]
        write_json(args.json, figures, [
            f"{args.records:,} seeds, batches of {args.batch}, best of {args.repeat} interleaved passes, CPU time of "
            f"the decoding thread; load average {load:.1f} on {os.cpu_count()} CPUs after the runs"])


if __name__ == "__main__":
    main()
