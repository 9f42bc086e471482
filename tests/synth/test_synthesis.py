import json
from concurrent.futures import Future

import pytest
from linksyn.common import modes
from linksyn.common.llm.base import ChatRequest, Completion
from linksyn.synth.config import SynthConfig
from linksyn.synth.synthesis import Synthesizer, is_stem, synth_qa_id
from linksyn.v1 import records_pb2

from tests.synth.synth_fixtures import ScriptedLLM, fixture_paths, qa_json

NEW_Q = "A farmer packs 15 eggs per tray and fills 4 trays; then he sells half. How many eggs remain?"


def by_path(req: ChatRequest) -> str:
    return req.request_id.split(":")[0]


def good_reply(req: ChatRequest) -> str:
    # A distinct question per request, so ids differ.
    return qa_json(f"{NEW_Q} (variant {req.request_id})", "#### 30", difficulty=3)


def cfg(**kw) -> SynthConfig:
    return SynthConfig(grades=[2, 3, 4], non_stem_grades=[3], **kw)


def test_one_generate_call_per_round_and_lineage():
    paths = fixture_paths()
    llm = ScriptedLLM(lambda r: qa_json(f"{NEW_Q} {r.request_id}", "#### 30", difficulty=5) if ":rate" not in r.request_id
                      else json.dumps({"difficulty": 5}))
    outs = Synthesizer(cfg(), llm).synthesize(paths)
    # generation (1 link + 3 grades + 1 hard in ONE call), then ratings for hard mode in one more call
    assert [len(c) for c in llm.calls] == [5, 1]
    assert [o.error for o in outs] == [None, None, None]
    link, grades, hard = outs
    assert len(link.qas) == 1 and len(grades.qas) == 3 and len(hard.qas) == 1
    assert sorted(q.difficulty for q in grades.qas) == [2, 3, 4]
    for path, out in zip(paths, outs):
        for qa in out.qas:
            assert qa.path_id == path.id
            assert set(qa.source_seed_ids) <= {s.id for s in path.seeds} and qa.source_seed_ids
            assert qa.models == ["scripted"]
            assert qa.prompt_version == f"{modes.mode_name(path.mode)}-v1"
            assert qa.mode == path.mode and qa.lang == "en"
            assert qa.id == synth_qa_id(qa.question, qa.answer)
            assert qa.prompt_tokens >= 10 and qa.completion_tokens >= 5
            assert qa.discipline == path.target_discipline
    assert hard.qas[0].source_seed_ids == [paths[2].seeds[0].id]
    assert hard.qas[0].difficulty == 5


def test_id_is_stable_under_normalisation():
    assert synth_qa_id("What is  2+2?", "4") == synth_qa_id("what is 2+2? ", "4")
    assert synth_qa_id("What is 2+2?", "4") != synth_qa_id("What is 2+2?", "5")


def test_non_stem_paths_get_fewer_grades():
    assert is_stem("physics", ["physics"]) and is_stem("STEM/Physics", ["physics"]) and not is_stem("law", ["physics"])
    p = fixture_paths()[1]
    p.target_discipline = "law"
    llm = ScriptedLLM(good_reply)
    (out,) = Synthesizer(cfg(), llm).synthesize([p])
    assert [q.difficulty for q in out.qas] == [3]


def test_drops_are_counted_by_reason():
    paths = fixture_paths()[:1]
    seed_q = paths[0].seeds[0].question
    replies = iter(["not json at all", qa_json(seed_q), qa_json(NEW_Q, answer="")])
    for reply, reason in [("malformed", "malformed"), ("copy", "seed_copy"), ("empty", "malformed")]:
        llm = ScriptedLLM(lambda r: next(replies))
        (out,) = Synthesizer(cfg(), llm).synthesize(paths)
        assert out.error is None and out.qas == [] and out.dropped == {reason: 1}, (reply, out.dropped)


def test_wrong_language_is_dropped():
    llm = ScriptedLLM(lambda r: qa_json("一个农民有十五个鸡蛋，他卖掉了一半，还剩多少个？", "7.5"))
    (out,) = Synthesizer(cfg(), llm).synthesize(fixture_paths()[:1])
    assert out.dropped == {"wrong_language": 1}


def test_llm_error_fails_only_that_path():
    def reply(r: ChatRequest):
        if by_path(r) == "path-grades" and r.request_id.endswith(":3"):
            return Completion(error="HTTP 503 after 3 attempts", retryable=True)
        return good_reply(r) if ":rate" not in r.request_id else json.dumps({"difficulty": 5})

    outs = Synthesizer(cfg(), ScriptedLLM(reply)).synthesize(fixture_paths())
    assert outs[1].error and "503" in outs[1].error and outs[1].retryable and outs[1].qas == []
    assert outs[0].error is None and len(outs[0].qas) == 1
    assert outs[2].error is None and len(outs[2].qas) == 1


def test_unusable_paths_fail_permanently():
    bad_mode = records_pb2.WalkPath(id="p1", mode=99, seeds=fixture_paths()[0].seeds)  # a value no mode has
    no_seeds = records_pb2.WalkPath(id="p2", mode=modes.LINK)
    outs = Synthesizer(cfg(), ScriptedLLM(good_reply)).synthesize([bad_mode, no_seeds])
    assert "unknown synthesis mode value 99" in outs[0].error and not outs[0].retryable
    assert "no seeds" in outs[1].error and not outs[1].retryable


@pytest.mark.parametrize(
    "seed_difficulty,ratings,kept,reason",
    [
        (2, {"rate": 4}, True, None),
        (2, {"rate": 2}, False, "not_harder"),
        (4, {"rate": 3}, False, "not_harder"),
        (0, {"rate": 4, "rate-src": 3}, True, None),  # unknown source difficulty: rated in the same call
        (0, {"rate": 3, "rate-src": 3}, False, "not_harder"),
        (2, {"rate": "garbage"}, False, "rating_malformed"),
    ],
)
def test_hard_mode_keeps_only_rewrites_rated_harder(seed_difficulty, ratings, kept, reason):
    path = fixture_paths()[2]
    path.seeds[0].difficulty = seed_difficulty

    def reply(r: ChatRequest) -> str:
        kind = r.request_id.rsplit(":", 1)[1]
        if kind in ratings:
            v = ratings[kind]
            return json.dumps({"difficulty": v}) if isinstance(v, int) else v
        return qa_json(NEW_Q, "#### 30", difficulty=5)

    llm = ScriptedLLM(reply)
    (out,) = Synthesizer(cfg(), llm).synthesize([path])
    assert len(llm.calls) == 2 and len(llm.calls[1]) == len(ratings)
    assert llm.calls[1][0].json_schema["required"] == ["difficulty"]
    assert bool(out.qas) == kept
    if kept:
        assert out.qas[0].difficulty == ratings["rate"]
    else:
        assert out.dropped == {reason: 1}


@pytest.mark.parametrize(
    "gen_answer,ref_answer,kept,final",
    [
        ("#### 30", "After selling half, 30 remain. The answer is 30", True, "#### 30"),
        ("#### 30", "#### 31", False, None),
        ("B", "The answer is (B)", True, "B"),
        ("B", "C", False, None),
        ("Carbon dioxide", "Carbon dioxide (CO2), taken in through the stomata", True,
         "Carbon dioxide (CO2), taken in through the stomata"),
    ],
)
def test_refinement_agreement(gen_answer, ref_answer, kept, final):
    gen = ScriptedLLM(lambda r: qa_json(NEW_Q, gen_answer), name="gen")
    ref = ScriptedLLM(lambda r: json.dumps({"answer": ref_answer, "rationale": "checked"}), name="ref")
    (out,) = Synthesizer(cfg(), gen, ref).synthesize(fixture_paths()[:1])
    assert len(ref.calls) == 1
    if kept:
        (qa,) = out.qas
        assert qa.answer == final and qa.models == ["gen", "ref"] and qa.rationale == "checked"
        assert qa.prompt_tokens == 20  # generation + refinement
    else:
        assert out.qas == [] and out.dropped == {"refine_disagree": 1}


def test_refiner_error_fails_the_path():
    gen = ScriptedLLM(lambda r: qa_json(NEW_Q, "#### 30"))
    ref = ScriptedLLM(lambda r: Completion(error="context too long", retryable=False), name="ref")
    (out,) = Synthesizer(cfg(), gen, ref).synthesize(fixture_paths()[:1])
    assert out.qas == [] and "refinement request failed: context too long" in out.error and not out.retryable


def test_generation_seed_follows_the_request_so_a_redelivered_path_samples_the_same():
    """A path redelivered after a crash must be sampled as before (same QA, same id: the sink skips the replay),
    while different paths and grades get different seeds."""
    paths = fixture_paths()
    llm = ScriptedLLM(lambda r: qa_json(f"{NEW_Q} {r.request_id}", "#### 30", difficulty=5) if ":rate" not in r.request_id
                      else json.dumps({"difficulty": 5}))
    Synthesizer(cfg(), llm).synthesize(paths)
    Synthesizer(cfg(), llm).synthesize(paths[::-1])  # another process, another batch order
    first, second = llm.calls[0], llm.calls[2]
    seeds_first = {r.request_id: r.params.seed for r in first}
    seeds_second = {r.request_id: r.params.seed for r in second}
    assert seeds_first == seeds_second
    assert all(s is not None for s in seeds_first.values())
    assert len(set(seeds_first.values())) == len(seeds_first)  # 1 link + 3 grades + 1 hard: all different
    assert all(r.params.temperature == cfg().temperature for r in first)


class HandResolvedLLM(ScriptedLLM):
    """submit() returns futures the test resolves one by one (`answer(request_id)`), like replies of a server that
    finish in their own order."""

    def __init__(self, reply) -> None:
        super().__init__(reply)
        self.open: dict[str, tuple[ChatRequest, Future]] = {}

    def submit(self, requests):
        self.calls.append(list(requests))
        futures = []
        for r in requests:
            f = Future()
            self.open[r.request_id] = (r, f)
            futures.append(f)
        return futures

    def answer(self, request_id: str) -> None:
        r, f = self.open.pop(request_id)
        c = self.reply(r)
        f.set_result(Completion(text=c, prompt_tokens=10, completion_tokens=5, finish_reason="stop"))


def test_a_path_is_handed_out_when_its_own_requests_are_done_not_when_the_batch_is():
    import threading

    paths = fixture_paths()
    llm = HandResolvedLLM(lambda r: qa_json(f"{NEW_Q} {r.request_id}", "#### 30", difficulty=5)
                          if ":rate" not in r.request_id else json.dumps({"difficulty": 5}))
    got: list[tuple[int, object]] = []
    stream = Synthesizer(cfg(), llm).synthesize_stream(paths)
    worker = threading.Thread(target=lambda: got.extend(stream), daemon=True)
    worker.start()

    def wait(pred):
        for _ in range(500):
            if pred():
                return
            threading.Event().wait(0.01)
        raise AssertionError("timed out")

    wait(lambda: len(llm.open) == 5)  # every generation request of the batch sent at once
    llm.answer("path-link:link")
    wait(lambda: [i for i, _ in got] == [0])  # the link path is out; 3 grades and the hard rewrite still open
    llm.answer("path-hard:hard")
    wait(lambda: "path-hard:hard:rate" in llm.open)  # its rating follows at once, alone
    assert [len(c) for c in llm.calls] == [5, 1]
    llm.answer("path-hard:hard:rate")
    wait(lambda: [i for i, _ in got] == [0, 2])
    for g in (4, 2, 3):  # grades finish out of order; the path's QA keep the grade order
        assert len(got) == 2
        llm.answer(f"path-grades:multi_grade:{g}")
    worker.join(5)
    assert [i for i, _ in got] == [0, 2, 1]
    assert [q.difficulty for q in got[2][1].qas] == [2, 3, 4]
