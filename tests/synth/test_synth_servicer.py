"""gRPC SynthService over a real in-process gRPC server."""

import json
from concurrent import futures

import grpc
import pytest
from linksyn.common.llm.base import ChatRequest
from linksyn.synth.config import SynthConfig
from linksyn.synth.servicer import SynthServicer
from linksyn.synth.stage import SynthStage
from linksyn.synth.synthesis import Synthesizer
from linksyn.v1 import common_pb2, records_pb2, synth_pb2, synth_pb2_grpc

from tests.synth.synth_fixtures import ScriptedLLM, fixture_paths, qa_json


@pytest.fixture
def server():
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = srv.add_insecure_port("127.0.0.1:0")
    yield srv, port
    srv.stop(0)


def test_synthesize_preview_and_stats(server):
    srv, port = server

    def reply(r: ChatRequest) -> str:
        return qa_json(f"How many wheels do {len(r.request_id)} cars have in total altogether?", "#### 4")

    stage = SynthStage(Synthesizer(SynthConfig(), ScriptedLLM(reply)), "in", "out", name="synth-grpc")
    synth_pb2_grpc.add_SynthServiceServicer_to_server(SynthServicer(stage), srv)
    srv.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = synth_pb2_grpc.SynthServiceStub(ch)
        reply_ = stub.Synthesize(synth_pb2.SynthesizeRequest(path=fixture_paths()[0]))
        assert len(reply_.qa) == 1 and reply_.qa[0].path_id == "path-link"
        with pytest.raises(grpc.RpcError) as e:
            stub.Synthesize(synth_pb2.SynthesizeRequest(path=records_pb2.WalkPath(id="x", mode=99)))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "unknown synthesis mode value 99" in e.value.details()
        stats = stub.Stats(common_pb2.StatsRequest())
        assert stats.service == "synth-grpc"
        details = json.loads(stats.details_json)
        assert details["generator"] == "scripted" and "link-v1" in details["prompt_versions"]
