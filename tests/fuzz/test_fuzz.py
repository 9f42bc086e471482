"""Property-based fuzzing of everything that reads outside input (issue 21): the seed readers, every record
decoder, the LLM reply parsers and the config loader. The property is the same everywhere: any input ends in a
value or in the reader's own error (a rejected row, a ValueError / MalformedRecord, a ReplyError, a ConfigError),
never in another exception. Each target starts from the regression corpus of the issue (tests/hostile_inputs.py),
then hypothesis generates for the budget in tests/fuzz/conftest.py."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from linksyn.common.seeds import SeedReader
from linksyn.common.seeds.csv_records import csv_records
from linksyn.common.seeds.readers import csv_cells

from tests.fuzz.conftest import FUZZ_MAX_EXAMPLES
from tests.hostile_inputs import CHAT_BODIES, CSV_FIELD_OVER_128K, GOOD_ROW, JSONL_ROWS, LLM_REPLIES

FUZZ = settings(max_examples=FUZZ_MAX_EXAMPLES, deadline=None, database=None, derandomize=False,
                suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
seed_rows = st.fixed_dictionaries(
    {"question": json_values, "answer": json_values},
    optional={"id": json_values, "difficulty": json_values, "meta": json_values, "lang": json_values,
              "problem": json_values, "solution": json_values, "level": json_values},
)
jsonish_text = st.text(alphabet=st.sampled_from(list('{}[]",:0123456789.eE-+ \\u\n\tabtrfnl\ud800')), max_size=200)


def _jsonl_line(data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["row", "text", "bytes"]))
    if kind == "row":
        return json.dumps(data.draw(seed_rows), allow_nan=True).encode("utf-8", "surrogatepass")
    if kind == "text":
        return data.draw(jsonish_text).encode("utf-8", "surrogatepass")
    return data.draw(st.binary(max_size=200))


def _read_all(path: Path) -> None:
    reader = SeedReader([str(path)])
    for seed in reader:
        seed.SerializeToString()  # a seed must go on the bus


@FUZZ
@given(data=st.data())
@example(data=None)
def test_fuzz_jsonl_seed_reader(data, tmp_path_factory: pytest.TempPathFactory, budget) -> None:
    if not budget.run():
        return
    path = tmp_path_factory.mktemp("jsonl") / "seeds.jsonl"
    if data is None:  # the regression corpus
        lines = [json.dumps(GOOD_ROW).encode(), *(r.encode() for r in JSONL_ROWS.values())]
    else:
        lines = [_jsonl_line(data) for _ in range(data.draw(st.integers(1, 4)))]
    path.write_bytes(b"\n".join(lines) + b"\n")
    _read_all(path)


csv_text = st.text(alphabet=st.sampled_from(list('ab,"\r\n é\x00')), max_size=80)


@FUZZ
@given(text=csv_text, limit=st.sampled_from([4, 16, 1000]))
@example(text=f'"{CSV_FIELD_OVER_128K}",a,b,c,d,A\nq,a,b,c,d,B\n', limit=1_000_000)
def test_fuzz_csv_records_split_where_csv_reader_does(text: str, limit: int, budget) -> None:
    if not budget.run():
        return
    expected = []
    reader = csv.reader(io.StringIO(text, newline=""))
    if csv.field_size_limit() < len(text):
        csv.field_size_limit(len(text))
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        if row:
            expected.append((line, row))
    got = []
    for r in csv_records(io.BytesIO(text.encode()), limit):
        assert (r.data is None) == (r.size > limit)
        cells = csv_cells(r.data) if r.data is not None else None
        if cells != []:
            got.append((r.line, cells))
    assert len(got) == len(expected)
    for (g_line, g_cells), (e_line, e_cells) in zip(got, expected):
        assert g_line == e_line and (g_cells is None or g_cells == e_cells)


@FUZZ
@given(raw=st.binary(max_size=300), name=st.sampled_from(["x_test.csv", "agronomy.csv"]))
@example(raw=b'"' + b"z" * 200 + b'",b,c\n' + b"\xff\xfe,\r\n", name="x_test.csv")
def test_fuzz_csv_seed_reader(raw: bytes, name: str, tmp_path_factory: pytest.TempPathFactory, budget) -> None:
    if not budget.run():
        return
    path = tmp_path_factory.mktemp("csv") / name
    path.write_bytes(raw)
    _read_all(path)


def _decoders() -> dict[str, object]:
    from linksyn.extractor.stage import decode_seed
    from linksyn.graph.config import GraphConfig
    from linksyn.graph.stage import annotated_seed_decoder
    from linksyn.sampler.stage import decode_probe_report
    from linksyn.sink.stage import decode_synth_qa as sink_decode
    from linksyn.synth.stage import decode_path
    from linksyn.trainer.stage import decode_synth_qa as trainer_decode

    from linksyn.common.bus.base import Message

    def extractor(value: bytes, json_header: bool = False) -> object:
        # The seeds topic carries protobuf or JSON seeds (linksyn.common.seeds.wire): the decoder reads headers too.
        headers = (("content-type", b"application/json"),) if json_header else ()
        return decode_seed(Message("linksyn.seeds", 0, 0, None, value, headers))

    return {"extractor": extractor, "graph": annotated_seed_decoder(GraphConfig()), "sampler": decode_probe_report,
            "sink": sink_decode, "synth": decode_path, "trainer": trainer_decode}


def _valid_records() -> list[bytes]:
    from linksyn.v1 import records_pb2

    seed = records_pb2.Seed(id="s", question="q", answer="a", lang="en")
    return [
        seed.SerializeToString(),
        records_pb2.AnnotatedSeed(seed=seed, kps=["a", "b"], discipline="math", difficulty=2).SerializeToString(),
        records_pb2.WalkPath(id="p", kps=["a"], seeds=[records_pb2.PathSeed(id="s", question="q", answer="a")])
        .SerializeToString(),
        records_pb2.SynthQA(id="x", question="q", answer="a").SerializeToString(),
        records_pb2.ProbeReport(run_id="r", buckets=[records_pb2.ProbeBucket(discipline="d", difficulty=1, n=1,
                                                                             accuracy=0.5, deficit=0.1)])
        .SerializeToString(),
    ]


def _mutated(data: st.DataObject) -> bytes:
    base = bytearray(data.draw(st.sampled_from(_valid_records())))
    for _ in range(data.draw(st.integers(0, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and base:
            i = data.draw(st.integers(0, len(base) - 1))
            base[i] = data.draw(st.integers(0, 255))
        elif op == "cut" and base:
            base = base[: data.draw(st.integers(0, len(base) - 1))]
        else:
            base[data.draw(st.integers(0, len(base))):0] = data.draw(st.binary(max_size=8))
    return bytes(base)


@pytest.mark.parametrize("service", ["extractor", "graph", "sampler", "sink", "synth", "trainer"])
def test_fuzz_record_decoder(service: str, budget) -> None:
    decode = _decoders()[service]

    @FUZZ
    @given(data=st.data())
    @example(data=None)
    def run(data) -> None:
        if not budget.run():
            return
        if data is None:
            value = b"\x0a\xff\xff\xff\xff\x0f" + b"\x00" * 8
        else:
            kind = data.draw(st.sampled_from(["mutated", "bytes", "json"] if service == "extractor" else
                                             ["mutated", "bytes"]))
            value = (_mutated(data) if kind == "mutated" else data.draw(st.binary(max_size=200)) if kind == "bytes"
                     else _jsonl_line(data))
        try:
            if service == "extractor":
                decode(value, data is not None and data.draw(st.booleans()))
            else:
                decode(value)
        except ValueError:  # MalformedRecord and check failures: a dead letter with its reason
            pass

    run()


def _reply_parsers() -> dict[str, object]:
    from linksyn.common.llm.openai import parse_reply as parse_body
    from linksyn.common.llm.reply import first_json_object
    from linksyn.common import bounded_json
    from linksyn.common.taxonomy import load_taxonomy
    from linksyn.extractor.reply import ReplyLimits, parse_reply as parse_extraction
    from linksyn.synth.parse import parse_generated_qa, parse_rating, parse_refined_answer

    taxonomy = load_taxonomy()
    return {
        "first_json_object": first_json_object,
        "extraction": lambda t: parse_extraction(t, taxonomy, ReplyLimits()),
        "extraction_labelled": lambda t: parse_extraction(t, taxonomy, ReplyLimits(), False, False),
        "generated_qa": parse_generated_qa,
        "rating": parse_rating,
        "refined_answer": parse_refined_answer,
        "chat_body": lambda t: parse_body(bounded_json.loads(t)),
    }


reply_objects = st.fixed_dictionaries({}, optional={
    "knowledge_points": json_values, "discipline": json_values, "subdiscipline": json_values,
    "difficulty": json_values, "question": json_values, "answer": json_values, "rationale": json_values,
    "choices": json_values, "usage": json_values,
})


@pytest.mark.parametrize("parser", ["first_json_object", "extraction", "extraction_labelled", "generated_qa",
                                    "rating", "refined_answer", "chat_body"])
def test_fuzz_reply_parser(parser: str, budget) -> None:
    parse = _reply_parsers()[parser]
    corpus = [*LLM_REPLIES.values(), *CHAT_BODIES.values()]

    @FUZZ
    @given(data=st.data())
    def run(data) -> None:
        if not budget.run():
            return
        kind = data.draw(st.sampled_from(["corpus", "object", "wrapped", "text"]))
        if kind == "corpus":
            text = data.draw(st.sampled_from(corpus))
        elif kind == "object":
            text = json.dumps(data.draw(reply_objects), allow_nan=True)
        elif kind == "wrapped":
            text = data.draw(st.text(max_size=20)) + "```json\n" + json.dumps(data.draw(reply_objects)) + "```"
        else:
            text = data.draw(jsonish_text)
        if parser == "chat_body" and kind == "object":
            text = json.dumps({"choices": [{"message": {"content": data.draw(json_values)}}],
                               "usage": data.draw(json_values)}, allow_nan=True)
        try:
            parse(text)
        except ValueError:  # ReplyError, or a body that is no chat completion: that request alone fails
            pass

    run()


yaml_text = st.text(alphabet=st.sampled_from(list("abcdefgkmnoprstuvxyz_:- {}[]\"'#&*!|>\n\t0123456789.")),
                    max_size=200)
config_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["bus", "runtime", "server", "extractor", "graph", "sampler", "synth", "sink", "trainer",
                         "kafka", "topics", "llm", "model", "grpc_token", "max_record_bytes", "retry", "x"]),
        inner, max_size=3),
    max_leaves=12,
)


def test_fuzz_config_loader(tmp_path: Path, budget) -> None:
    from linksyn.config import ConfigError, load_config

    @FUZZ
    @given(data=st.data())
    @example(data=None)
    def run(data) -> None:
        if not budget.run():
            return
        path = tmp_path / "linksyn.yaml"
        if data is None:
            path.write_text('server:\n  grpc_token: "unterminated\n', encoding="utf-8")
        elif data.draw(st.booleans()):
            path.write_text(data.draw(yaml_text), encoding="utf-8")
        else:
            import yaml

            path.write_text(yaml.safe_dump(data.draw(config_values)), encoding="utf-8")
        try:
            load_config(path)
        except ConfigError:
            pass

    run()
