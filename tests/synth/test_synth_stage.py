"""The synth stage: decoding, one LLM call per batch, per-path results, keys, metrics."""

import json

from prometheus_client import REGISTRY

from linksyn.common.bus.base import Message
from linksyn.common.ids import question_key
from linksyn.common.llm.base import ChatRequest, Completion
from linksyn.synth.config import SynthConfig
from linksyn.synth.stage import SynthStage
from linksyn.synth.synthesis import Synthesizer
from linksyn.v1 import records_pb2
from tests.synth.synth_fixtures import ScriptedLLM, fixture_paths, qa_json

IN, OUT = "linksyn.paths", "linksyn.synth-qa"


def msgs(values):
    return [Message(IN, 0, i, None, v) for i, v in enumerate(values)]


def reply(r: ChatRequest):
    if r.request_id.startswith("path-grades") and r.request_id.endswith(":4"):
        return Completion(error="HTTP 503", retryable=True)
    if ":rate" in r.request_id:
        return json.dumps({"difficulty": 5})
    return qa_json(f"How many items are there in total when we combine the groups? ({r.request_id})", "#### 12")


def test_stage_batches_paths_into_one_llm_call_and_keys_outputs_by_question():
    llm = ScriptedLLM(reply)
    stage = SynthStage(Synthesizer(SynthConfig(), llm), IN, OUT, name="synth-test")
    paths = fixture_paths()
    results = stage.process(msgs([p.SerializeToString() for p in paths] + [b"\xff\x00garbage"]))
    assert len(results) == 4
    assert len(llm.calls[0]) == 1 + 3 + 1  # every generation request of the batch in one call
    link, grades, hard, garbage = results
    assert link.error is None and len(link.outputs) == 1
    qa = records_pb2.SynthQA.FromString(link.outputs[0].value)
    assert link.outputs[0].topic == OUT and link.outputs[0].key == question_key(qa.question)
    assert qa.path_id == "path-link" and set(qa.source_seed_ids) <= {s.id for s in paths[0].seeds}
    assert grades.error and "HTTP 503" in grades.error and not grades.permanent
    assert hard.error is None and len(hard.outputs) == 1
    assert garbage.permanent and "malformed WalkPath protobuf" in garbage.error
    assert stage.totals["qa"] == 2 and stage.totals["failed"] == 1
    assert REGISTRY.get_sample_value("linksyn_synth_qa_total", {"service": "synth-test", "mode": "link"}) == 1
    assert REGISTRY.get_sample_value("linksyn_synth_paths_failed_total", {"service": "synth-test"}) == 1
    assert REGISTRY.get_sample_value("linksyn_synth_prompt_tokens_total", {"service": "synth-test"}) > 0


def test_replayed_path_gives_the_same_ids():
    llm = ScriptedLLM(reply)
    stage = SynthStage(Synthesizer(SynthConfig(), llm), IN, OUT, name="synth-test-2")
    value = fixture_paths()[0].SerializeToString()
    a = stage.process(msgs([value]))[0].outputs
    b = stage.process(msgs([value]))[0].outputs
    assert [o.key for o in a] == [o.key for o in b]


def test_drops_are_counted_in_metrics():
    llm = ScriptedLLM(lambda r: "sorry, I cannot do that")
    stage = SynthStage(Synthesizer(SynthConfig(), llm), IN, OUT, name="synth-test-3")
    (res,) = stage.process(msgs([fixture_paths()[0].SerializeToString()]))
    assert res.error is None and res.outputs == []
    assert REGISTRY.get_sample_value("linksyn_synth_dropped_total", {"service": "synth-test-3", "reason": "malformed"}) == 1


def test_spend_in_the_totals_is_the_meters_cumulative_figure_however_often_it_ticks():
    from linksyn.common.spend import BudgetConfig, Price, UsageMeter

    llm = ScriptedLLM(reply)
    meter = UsageMeter("synth-test-spend", [llm], BudgetConfig(prices={"scripted": Price(prompt=1e6)}), None, "u")
    stage = SynthStage(Synthesizer(SynthConfig(), llm), IN, OUT, name="synth-test-spend", meter=meter)
    stage.process(msgs([fixture_paths()[0].SerializeToString()]))
    for _ in range(3):
        stage.tick()
    stage.close()
    assert stage.totals["prompt_tokens:scripted"] == llm.usage.prompt_tokens == stage.totals["prompt_tokens"]
    assert stage.totals["cost"] == llm.usage.prompt_tokens  # 1 per token at this price
