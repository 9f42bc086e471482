from linksyn.v1 import common_pb2 as _common_pb2
from linksyn.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SynthesizeRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: _records_pb2.WalkPath
    def __init__(self, path: _Optional[_Union[_records_pb2.WalkPath, _Mapping]] = ...) -> None: ...

class SynthesizeReply(_message.Message):
    __slots__ = ("qa", "dropped")
    class DroppedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    QA_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    qa: _containers.RepeatedCompositeFieldContainer[_records_pb2.SynthQA]
    dropped: _containers.ScalarMap[str, int]
    def __init__(self, qa: _Optional[_Iterable[_Union[_records_pb2.SynthQA, _Mapping]]] = ..., dropped: _Optional[_Mapping[str, int]] = ...) -> None: ...
