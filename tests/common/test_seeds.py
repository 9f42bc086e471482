"""Seed readers: every format on small hand-written fixtures, bad rows reported with file and line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from linksyn.common.ids import content_id
from linksyn.common.seeds import RejectedRow, SeedReader, SeedSourceError, detect_format, plan_sources
from linksyn.common.seeds.rows import RowError, canonical_seed, guess_lang, last_boxed, parse_difficulty

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "seeds"
REPO = Path(__file__).resolve().parents[2]


def read(*paths: Path | str, fmt: str | None = None, **kw: int) -> tuple[list, SeedReader]:
    reader = SeedReader([str(p) for p in paths], fmt, **kw)
    return list(reader), reader


def reasons_by_line(reader: SeedReader) -> dict[int, str]:
    return {r.line: r.reason for r in reader.rejected}


# --- canonical JSONL ---------------------------------------------------------------------------------------------


def test_canonical_jsonl_reads_good_rows_and_reports_bad_ones_with_line():
    seeds, reader = read(FIXTURES / "canonical.jsonl")
    assert [s.question for s in seeds] == [
        "What is the derivative of x^2?",
        "Which gas do plants take in during photosynthesis?",
        "牛顿第二定律的表达式是什么？",
        "After the bad bytes, is reading still going?",
    ]
    first = seeds[0]
    assert (first.id, first.subject, first.discipline, first.difficulty, first.source, first.lang) == (
        "s-1", "calculus", "mathematics", 3, "handmade", "en",
    )
    # No id: a deterministic content id; no source: file and line; unknown fields land in meta.
    second = seeds[1]
    assert second.id == content_id(second.question, second.answer)
    assert second.source == "canonical.jsonl:2"
    assert second.difficulty == 2
    assert dict(second.meta) == {"topic": "botany"}
    assert seeds[2].lang == "zh"

    reasons = reasons_by_line(reader)
    assert set(reasons) == {4, 5, 6, 7, 9}, reader.rejected  # line 3 is blank and skipped silently
    assert reasons[4].startswith("invalid JSON")
    assert reasons[5] == "missing 'question'"
    assert reasons[6] == "empty 'answer'"
    assert "difficulty" in reasons[7] and "'hard'" in reasons[7]
    assert reasons[9].startswith("invalid UTF-8")
    assert all(r.path == str(FIXTURES / "canonical.jsonl") for r in reader.rejected)
    assert str(reader.rejected[0]) == f"{FIXTURES / 'canonical.jsonl'}:4: {reasons[4]}"
    assert (reader.read_count, reader.rejected_count) == (4, 5)


def test_ids_are_deterministic_across_reads():
    a, _ = read(FIXTURES / "canonical.jsonl")
    b, _ = read(FIXTURES / "canonical.jsonl")
    assert [s.id for s in a] == [s.id for s in b]
    assert len({s.id for s in a}) == len(a)


def test_oversized_rows_are_rejected_without_stopping_the_file(tmp_path: Path):
    path = tmp_path / "big.jsonl"
    small = json.dumps({"question": "q1", "answer": "a1"})
    big = json.dumps({"question": "x" * 5000, "answer": "a"})
    path.write_text("\n".join([small, big, small.replace("q1", "q3")]) + "\n")
    seeds, reader = read(path, max_row_bytes=1024)
    assert [s.question for s in seeds] == ["q1", "q3"]
    [rej] = reader.rejected
    assert rej.line == 2 and "over the limit of 1024" in rej.reason and str(len(big)) in rej.reason


def test_oversized_last_line_without_newline(tmp_path: Path):
    path = tmp_path / "tail.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n" + "y" * 3000)
    seeds, reader = read(path, max_row_bytes=1024)
    assert len(seeds) == 1
    assert [(r.line, r.reason) for r in reader.rejected] == [(2, "row is 3000 bytes, over the limit of 1024")]


def test_a_row_of_exactly_the_limit_passes(tmp_path: Path):
    row = {"question": "q", "answer": ""}
    row["answer"] = "a" * (1024 - len(json.dumps(row)))
    line = json.dumps(row)
    assert len(line) == 1024
    path = tmp_path / "exact.jsonl"
    path.write_text(line + "\n" + line[:-1] + "a}" + "\n")  # the second line is 1025 bytes
    seeds, reader = read(path, max_row_bytes=1024)
    assert len(seeds) == 1 and [r.line for r in reader.rejected] == [2]


def test_json_that_is_not_an_object_is_rejected(tmp_path: Path):
    path = tmp_path / "list.jsonl"
    path.write_text('["question", "answer"]\n')
    _, reader = read(path)
    assert reader.rejected == [RejectedRow(str(path), 1, "a seed row must be a JSON object, got list")]


# --- GSM8K, MATH -------------------------------------------------------------------------------------------------


def test_gsm8k_detected_and_final_answer_kept():
    assert detect_format(FIXTURES / "gsm8k.jsonl") == "gsm8k"
    seeds, reader = read(FIXTURES / "gsm8k.jsonl")
    assert [s.meta["final_answer"] for s in seeds] == ["7", "60"]
    assert seeds[0].answer.endswith("#### 7")
    assert seeds[0].source == "gsm8k:gsm8k.jsonl:1"
    assert [(r.line, r.reason) for r in reader.rejected] == [(3, "GSM8K answer has no final '#### <number>' line")]


def test_math_level_type_and_boxed_answer():
    assert detect_format(FIXTURES / "math.jsonl") == "math"
    seeds, reader = read(FIXTURES / "math.jsonl")
    assert [(s.difficulty, s.subject) for s in seeds] == [(1, "Prealgebra"), (3, "Algebra"), (0, "Algebra")]
    assert seeds[1].meta["final_answer"] == "\\frac{5}{6}"
    assert seeds[0].answer == "$1+1=\\boxed{2}$."
    assert [(r.line, r.reason) for r in reader.rejected] == [(4, "empty 'problem'")]


# --- MMLU, CMMLU CSV ---------------------------------------------------------------------------------------------


def test_mmlu_folder_subject_from_file_name_and_choices():
    seeds, reader = read(FIXTURES / "mmlu")
    # Files in name order; README.txt is not a seed file.
    assert [s.subject for s in seeds] == ["astronomy", "college_physics", "college_physics", "college_physics"]
    planet = seeds[0]
    assert planet.question == "Which planet is closest to the Sun?\n\nA. Venus\nB. Mercury\nC. Earth\nD. Mars"
    assert planet.answer == "B. Mercury"
    assert json.loads(planet.meta["choices"]) == ["Venus", "Mercury", "Earth", "Mars"]
    assert planet.meta["answer_letter"] == "B"
    assert planet.source == "mmlu:astronomy_val.csv:1"
    assert seeds[1].answer == "C. 20 m/s"
    # A quoted field across two lines: reported at its first line; the next row's line number stays right.
    assert seeds[3].question.startswith("A question that spans\ntwo lines?")
    assert seeds[3].source == "mmlu:college_physics_dev.csv:4"
    path = str(FIXTURES / "mmlu" / "college_physics_dev.csv")
    assert [(r.path, r.line) for r in reader.rejected] == [(path, 3), (path, 6)]
    assert "expected 6 columns" in reader.rejected[0].reason
    assert "got 'E'" in reader.rejected[1].reason


def test_cmmlu_header_skipped_lang_zh():
    path = FIXTURES / "cmmlu" / "agronomy.csv"
    assert detect_format(path) == "cmmlu"
    seeds, reader = read(path)
    assert [s.answer for s in seeds] == ["C. 大腿", "D. 绍鸭"]
    assert {s.lang for s in seeds} == {"zh"} and {s.subject for s in seeds} == {"agronomy"}
    assert seeds[0].source == "cmmlu:agronomy.csv:2"
    assert [(r.line, r.reason) for r in reader.rejected] == [(4, "answer must be one of A, B, C, D, got ''")]


def test_csv_invalid_utf8_and_oversized_rows(tmp_path: Path):
    path = tmp_path / "bad_dev.csv"
    path.write_bytes(b"ok?,a,b,c,d,A\ncaf\xe9?,a,b,c,d,A\n" + b"x" * 2000 + b",a,b,c,d,A\nstill ok?,a,b,c,d,D\n")
    seeds, reader = read(path, max_row_bytes=1024)
    assert [s.answer for s in seeds] == ["A. a", "D. d"]
    assert [(r.line, r.reason) for r in reader.rejected] == [
        (2, "invalid UTF-8 at byte 3"),
        (3, "row is 2010 bytes, over the limit of 1024"),  # the record's bytes in the file, line end excluded
    ]


# --- Parquet, HF datasets ----------------------------------------------------------------------------------------


def test_parquet_with_canonical_columns(tmp_path: Path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "seeds.parquet"
    table = pa.table(
        {
            "question": ["What is 2+2?", "Name a noble gas.", None],
            "answer": ["4", "Neon", "orphan"],
            "difficulty": [1, 2, 3],
        }
    )
    pq.write_table(table, path, row_group_size=2)
    assert detect_format(path) == "parquet"
    seeds, reader = read(path)
    assert [(s.question, s.answer, s.difficulty, s.source) for s in seeds] == [
        ("What is 2+2?", "4", 1, "seeds.parquet:1"),
        ("Name a noble gas.", "Neon", 2, "seeds.parquet:2"),
    ]
    assert [(r.path, r.line, r.reason) for r in reader.rejected] == [(str(path), 3, "missing 'question'")]


def test_parquet_with_hf_mmlu_columns(tmp_path: Path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "test-00000.parquet"
    pq.write_table(
        pa.table({"question": ["Largest planet?"], "subject": ["astronomy"], "choices": [["Mars", "Jupiter", "Venus", "Earth"]], "answer": [1]}),
        path,
    )
    [seed], _ = read(path)
    assert seed.answer == "B. Jupiter" and seed.subject == "astronomy"


def test_hf_dataset_dict_saved_to_disk(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "my_seeds"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(
                [{"problem": "What is $3 \\cdot 3$?", "level": "Level 2", "type": "Prealgebra", "solution": "$\\boxed{9}$"}]
            ),
            "test": datasets.Dataset.from_list(
                [{"problem": "", "level": "Level 1", "type": "Algebra", "solution": "x"}]
            ),
        }
    ).save_to_disk(str(folder))
    assert detect_format(folder) == "hf"
    seeds, reader = read(folder)
    assert [(s.difficulty, s.meta["final_answer"], s.source) for s in seeds] == [(2, "9", "my_seeds/train:1")]
    assert [(r.path, r.line, r.reason) for r in reader.rejected] == [(f"{folder}/test", 1, "empty 'problem'")]


def test_hf_single_dataset_found_inside_a_folder(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list([{"question": "Why is the sky blue?", "answer": "Rayleigh scattering."}]).save_to_disk(
        str(tmp_path / "data" / "sky")
    )
    [source] = plan_sources([tmp_path / "data"])
    assert source.format == "hf"
    [seed], _ = read(tmp_path / "data")
    assert seed.answer == "Rayleigh scattering."


# --- detection, explicit formats, errors -------------------------------------------------------------------------


def test_explicit_format_overrides_detection(tmp_path: Path):
    # A GSM8K-looking file read as canonical JSONL keeps the row without requiring '####'.
    path = tmp_path / "plain.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    assert detect_format(path) == "jsonl"
    seeds, reader = read(path, fmt="gsm8k")
    assert seeds == [] and reader.rejected[0].reason.startswith("GSM8K answer has no final")


def test_missing_path_and_unknown_format_fail_before_reading(tmp_path: Path):
    with pytest.raises(SeedSourceError, match="does not exist"):
        SeedReader([tmp_path / "nope.jsonl"])
    with pytest.raises(SeedSourceError, match="unknown seed format 'xml'"):
        SeedReader([FIXTURES / "gsm8k.jsonl"], "xml")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SeedSourceError, match="pass --format"):
        SeedReader([tmp_path / "notes.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeedSourceError, match="holds no seed files"):
        SeedReader([tmp_path / "empty"])


def test_rejected_rows_kept_are_capped_but_counted(tmp_path: Path):
    path = tmp_path / "junk.jsonl"
    path.write_text("not json\n" * 50)
    seeds, reader = read(path, max_rejected_kept=10)
    assert seeds == [] and reader.rejected_count == 50 and len(reader.rejected) == 10


def test_on_reject_sees_every_rejection():
    reader = SeedReader([FIXTURES / "canonical.jsonl"])
    seen: list[RejectedRow] = []
    reader.on_reject = seen.append
    list(reader)
    assert [r.line for r in seen] == [4, 5, 6, 7, 9]


# --- pure helpers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 0), ("", 0), (4, 4), ("5", 5), ("Level 3", 3), (2.0, 2)]
)
def test_parse_difficulty(value, expected):
    assert parse_difficulty(value) == expected


@pytest.mark.parametrize("value", ["hard", 7, -1, True, 2.5])
def test_parse_difficulty_rejects(value):
    with pytest.raises(RowError):
        parse_difficulty(value)


def test_last_boxed_nested_and_missing():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{a}{b}}") == "\\frac{a}{b}"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{unclosed") is None


def test_guess_lang_counts_as_a_character_loop_would():
    import random

    def by_character(text: str) -> str:  # the definition: CJK share of the non-space characters
        chars = [c for c in text if not c.isspace()]
        cjk = sum(1 for c in chars if "\u3000" <= c <= "\u303f" or "\u3400" <= c <= "\u4dbf"
                  or "\u4e00" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef")
        return "zh" if chars and cjk * 5 >= len(chars) else "en"

    rng = random.Random(7)
    alphabet = "ab c1.\t\n\u3000\u3001\u4e2d\u6587\uff1f\uff01\u00a0\u2003x"  # ideographic and other spaces
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert guess_lang(text) == by_character(text), repr(text)


def test_guess_lang():
    assert guess_lang("What is the capital of France?") == "en"
    assert guess_lang("法国的首都是哪里？") == "zh"
    assert guess_lang("计算 $x^2 + 2x + 1$ 的因式分解") == "zh"


def test_canonical_meta_object_merged():
    seed = canonical_seed({"question": "q", "answer": "a", "meta": {"k": 1}, "extra": ["x"]}, "f:1")
    assert dict(seed.meta) == {"k": "1", "extra": '["x"]'}


def test_example_seeds_file_is_clean():
    seeds, reader = read(REPO / "examples" / "seeds.jsonl")
    assert reader.rejected == [] and len(seeds) >= 30
    assert len({s.id for s in seeds}) == len(seeds)


# --- the real data folder (skips when absent) --------------------------------------------------------------------


def shared_data() -> Path:
    return Path(os.environ.get("LINKSYN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.mark.parametrize(
    ("rel", "fmt", "rows"),
    [
        ("seeds/mmlu/dev", "mmlu", 285),
        ("seeds/gsm8k/train.jsonl", "gsm8k", 7473),
        ("seeds/math/math_1000.jsonl", "math", 1000),
        ("eval/cmmlu/data/dev", "cmmlu", 335),
    ],
)
def test_real_data_reads_without_rejections(rel: str, fmt: str, rows: int):
    path = shared_data() / rel
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set LINKSYN_SHARED_DATA)")
    seeds, reader = read(path)
    assert {s.format for s in reader.sources} == {fmt}
    assert reader.rejected == [] and len(seeds) == rows
