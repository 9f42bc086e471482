"""gRPC TrainerService: thin; the logic is in RunController and probes. StartRun and Probe return at once (the job
runs in the background); RunStatus polls it."""

from __future__ import annotations

from typing import Any, Mapping

import grpc
from linksyn.common.runtime.stats import RuntimeStats
from linksyn.trainer.runs import RunController, RunInfo
from linksyn.v1 import trainer_pb2, trainer_pb2_grpc


def _state(info: RunInfo) -> trainer_pb2.RunState:
    state = trainer_pb2.RunState(run_id=info.run_id, state=info.state, step=info.step, max_steps=info.max_steps,
                                 loss=info.loss, tokens_per_s=info.tokens_per_s, checkpoint=info.checkpoint,
                                 error=info.error, kind=info.kind)
    if info.report is not None:
        state.probe_report.CopyFrom(info.report)
    return state


class TrainerServicer(RuntimeStats, trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(self, controller: RunController) -> None:
        self.controller = controller
        self.stats_service = controller.service

    def stats_details(self) -> Mapping[str, Any]:
        runs = {r.run_id: r.state for r in self.controller.runs.values()}
        return {"runs": runs, "launcher": self.controller.cfg.launcher}

    def StartRun(self, request, context):  # noqa: N802
        try:
            return _state(self.controller.start(request.model, request.data, int(request.max_steps)))
        except RuntimeError as e:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))

    def RunStatus(self, request, context):  # noqa: N802
        try:
            return _state(self.controller.status(request.run_id))
        except KeyError as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))

    def Probe(self, request, context):  # noqa: N802
        try:
            return _state(self.controller.probe(request.checkpoint, list(request.benchmarks)))
        except RuntimeError as e:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
