"""SamplerService gRPC servicer (thin): SetTargets, Sample (preview) and Stats."""

from __future__ import annotations

import json
import time

import grpc

from linksyn.sampler.service import SamplerService
from linksyn.v1 import common_pb2, sampler_pb2, sampler_pb2_grpc

_STARTED = time.monotonic()
MAX_PREVIEW = 10_000


class SamplerServicer(sampler_pb2_grpc.SamplerServiceServicer):
    def __init__(self, service: SamplerService) -> None:
        self.service = service

    def Stats(self, request, context):
        st = self.service.stats()
        counters = {
            "paths_emitted": float(st.get("paths_emitted", 0)),
            "kp_coverage": float(st.get("kp_coverage", 0.0)),
            "seed_coverage": float(st.get("seed_coverage", 0.0)),
        }
        return common_pb2.StatsReply(
            service="sampler", version=str(st.get("graph_version", 0)), uptime_s=time.monotonic() - _STARTED,
            counters=counters, details_json=json.dumps(st),
        )

    def SetTargets(self, request: sampler_pb2.Targets, context):
        params = {k: getattr(request, k) for k in ("alpha", "beta", "gamma", "eta") if request.HasField(k)}
        bad = [k for k, v in [*request.discipline.items(), *request.difficulty.items()] if v < 0]
        if bad or set(request.difficulty) - {"1", "2", "3", "4", "5"}:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"shares must be >= 0 and difficulty keys '1'..'5'; got {dict(request.discipline)} "
                          f"{dict(request.difficulty)}")
        try:
            t = self.service.set_targets(dict(request.discipline), dict(request.difficulty), **params)
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        s = self.service.sampler
        reply = sampler_pb2.Targets(discipline=t.discipline, difficulty=t.difficulty)
        if s is not None:
            disc, diff = s.resolved_target_dicts()
            reply = sampler_pb2.Targets(discipline=disc, difficulty=diff, alpha=s.params.alpha, beta=s.params.beta,
                                        gamma=s.params.gamma, eta=s.params.eta)
        return reply

    def Sample(self, request: sampler_pb2.SampleRequest, context):
        if not 0 <= request.n <= MAX_PREVIEW:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"n must be in 0..{MAX_PREVIEW}, got {request.n}")
        try:
            paths = self.service.preview(request.n)
        except LookupError as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        return sampler_pb2.SampleReply(paths=paths)
