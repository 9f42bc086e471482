"""gRPC SinkService over a real in-process gRPC server."""

import json
from concurrent import futures

import grpc

from linksyn.sink.config import SinkConfig
from linksyn.sink.servicer import SinkServicer
from linksyn.sink.stage import SinkStage
from linksyn.v1 import common_pb2, sink_pb2_grpc


def test_sink_stats(tmp_path):
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = srv.add_insecure_port("127.0.0.1:0")
    stage = SinkStage(SinkConfig(output_dir=str(tmp_path / "ds")), "synth-qa", name="sink-grpc")
    sink_pb2_grpc.add_SinkServiceServicer_to_server(SinkServicer(stage), srv)
    srv.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stats = sink_pb2_grpc.SinkServiceStub(ch).Stats(common_pb2.StatsRequest())
    d = json.loads(stats.details_json)
    srv.stop(0)
    assert stats.service == "sink-grpc" and d["durable"]["records"] == 0 and d["pending_records"] == 0
