"""The one reader of multiple-choice benchmark files (MMLU and CMMLU layouts), local and fsspec paths."""

from __future__ import annotations

import fsspec
import pytest

from linksyn.common.benchmarks import BenchmarkFormatError, MCItem, mmlu_subject, read_mc_benchmark

MMLU_ROWS = 'What is 2+2?,3,4,5,6,B\n"Comma, inside?",yes,no,maybe,never,A\n'


def test_mmlu_layout_subject_from_the_file_name_and_answer_index(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "college_physics_test.csv").write_text(MMLU_ROWS)
    (tmp_path / "astronomy_dev.csv").write_text("Sun is a?,star,planet,moon,comet,A\n")
    items = read_mc_benchmark(str(tmp_path), "mmlu")
    assert items == [
        MCItem("astronomy", "Sun is a?", ("star", "planet", "moon", "comet"), 0),
        MCItem("college_physics", "What is 2+2?", ("3", "4", "5", "6"), 1),
        MCItem("college_physics", "Comma, inside?", ("yes", "no", "maybe", "never"), 0),
    ]
    assert len(read_mc_benchmark(str(tmp_path), "mmlu", max_per_subject=1)) == 2
    assert mmlu_subject("high_school_biology_val") == "high_school_biology" and mmlu_subject("x_train") == "x"


def test_cmmlu_layout_and_an_fsspec_url(tmp_path):
    with fsspec.open("memory://bench-cmmlu/agronomy.csv", "w", encoding="utf-8") as f:
        f.write(",Question,A,B,C,D,Answer\n0,土地是什么,工具,土地,劳动力,资金,B\n")
    [item] = read_mc_benchmark("memory://bench-cmmlu", "cmmlu")
    assert (item.subject, item.question, item.answer) == ("agronomy", "土地是什么", 1)


@pytest.mark.parametrize("layout,text,message", [
    ("mmlu", "only,three,columns\n", r"x_test.csv:1: MMLU rows have 6 columns"),
    ("mmlu", "q,a,b,c,d,E\n", r"x_test.csv:1: MMLU rows have 6 columns .* ending in 'E'"),
    ("cmmlu", "q,a\n", "CMMLU files have the header"),
    ("cmmlu", ",Question,A,B,C,D,Answer\n0,q,a,b,c,d,Z\n", r"x_test.csv:2: expected a Question and an Answer A-D"),
])
def test_a_file_not_in_its_layout_is_named_with_its_row(tmp_path, layout, text, message):
    (tmp_path / "x_test.csv").write_text(text)
    with pytest.raises(BenchmarkFormatError, match=message):
        read_mc_benchmark(str(tmp_path), layout)


def test_missing_and_empty_paths(tmp_path):
    with pytest.raises(BenchmarkFormatError, match="does not exist"):
        read_mc_benchmark(str(tmp_path / "nope"), "mmlu")
    with pytest.raises(BenchmarkFormatError, match="holds no .csv files"):
        read_mc_benchmark(str(tmp_path), "mmlu")
