"""SamplerService gRPC servicer (thin): SetTargets, Sample (preview) and Stats."""

from __future__ import annotations

from typing import Any, Mapping

import grpc
from linksyn.common.grades import GRADE_KEYS
from linksyn.common.runtime.stats import RuntimeStats
from linksyn.sampler.live import SERVICE, LiveSampler
from linksyn.sampler.targets import check_shares
from linksyn.v1 import sampler_pb2, sampler_pb2_grpc

MAX_PREVIEW = 10_000


class SamplerServicer(RuntimeStats, sampler_pb2_grpc.SamplerServiceServicer):
    stats_service = SERVICE

    def __init__(self, sampler: LiveSampler) -> None:
        self.live = sampler

    def stats_details(self) -> Mapping[str, Any]:
        return self.live.stats()

    def SetTargets(self, request: sampler_pb2.Targets, context):
        params = {k: getattr(request, k) for k in ("alpha", "beta", "gamma", "eta") if request.HasField(k)}
        unknown = sorted(set(request.difficulty) - set(GRADE_KEYS))
        if unknown:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"difficulty keys must be grades {', '.join(GRADE_KEYS)}; got {unknown[:10]}")
        try:
            check_shares("discipline", dict(request.discipline))
            check_shares("difficulty", dict(request.difficulty))
            t = self.live.set_targets(dict(request.discipline), dict(request.difficulty), **params)
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        s = self.live.sampler
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
            paths = self.live.preview(request.n)
        except LookupError as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        return sampler_pb2.SampleReply(paths=paths)
