from linksyn.v1 import common_pb2 as _common_pb2
from linksyn.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartRunRequest(_message.Message):
    __slots__ = ("model", "data", "max_steps")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    model: str
    data: str
    max_steps: int
    def __init__(self, model: _Optional[str] = ..., data: _Optional[str] = ..., max_steps: _Optional[int] = ...) -> None: ...

class RunStatusRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class RunState(_message.Message):
    __slots__ = ("run_id", "state", "step", "max_steps", "loss", "tokens_per_s", "checkpoint", "error", "kind", "probe_report")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_S_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROBE_REPORT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    state: str
    step: int
    max_steps: int
    loss: float
    tokens_per_s: float
    checkpoint: str
    error: str
    kind: str
    probe_report: _records_pb2.ProbeReport
    def __init__(self, run_id: _Optional[str] = ..., state: _Optional[str] = ..., step: _Optional[int] = ..., max_steps: _Optional[int] = ..., loss: _Optional[float] = ..., tokens_per_s: _Optional[float] = ..., checkpoint: _Optional[str] = ..., error: _Optional[str] = ..., kind: _Optional[str] = ..., probe_report: _Optional[_Union[_records_pb2.ProbeReport, _Mapping]] = ...) -> None: ...

class ProbeRequest(_message.Message):
    __slots__ = ("checkpoint", "benchmarks")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    BENCHMARKS_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    benchmarks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, checkpoint: _Optional[str] = ..., benchmarks: _Optional[_Iterable[str]] = ...) -> None: ...
