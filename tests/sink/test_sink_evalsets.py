import pytest
from linksyn.sink.config import EvalSetConfig
from linksyn.sink.evalsets import EvalSetError, read_eval_set

from tests.sink.sink_fixtures import FIXTURES


def test_reads_each_format():
    mmlu = read_eval_set(EvalSetConfig(kind="mmlu", path=str(FIXTURES / "mmlu_test")))
    assert len(mmlu) == 3 and mmlu[1] == "Which of the following is a vector quantity?"
    cmmlu = read_eval_set(EvalSetConfig(kind="cmmlu", path=str(FIXTURES / "cmmlu_test")))
    assert len(cmmlu) == 1 and cmmlu[0].startswith("一个物体")
    gsm = read_eval_set(EvalSetConfig(kind="gsm8k", path=str(FIXTURES / "gsm8k_test.jsonl")))
    assert len(gsm) == 1 and gsm[0].startswith("Janet has 16 ducks")


def test_errors_name_the_file(tmp_path):
    with pytest.raises(EvalSetError, match="does not exist"):
        read_eval_set(EvalSetConfig(kind="mmlu", path=str(tmp_path / "missing")))
    (tmp_path / "x_test.csv").write_text("only,three,columns\n")
    with pytest.raises(EvalSetError, match=":1: MMLU rows have 6 columns"):
        read_eval_set(EvalSetConfig(kind="mmlu", path=str(tmp_path)))
    with pytest.raises(EvalSetError, match="CMMLU files have the header ,Question,A,B,C,D,Answer"):
        read_eval_set(EvalSetConfig(kind="cmmlu", path=str(tmp_path)))
    bad = tmp_path / "g.jsonl"
    bad.write_text('{"q": 1}\n')
    with pytest.raises(EvalSetError, match="line 1"):
        read_eval_set(EvalSetConfig(kind="gsm8k", path=str(bad)))
