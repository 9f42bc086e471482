from linksyn.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KnowledgePoint(_message.Message):
    __slots__ = ("id", "text", "discipline", "popularity", "difficulty_histogram")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DISCIPLINE_FIELD_NUMBER: _ClassVar[int]
    POPULARITY_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    id: int
    text: str
    discipline: str
    popularity: int
    difficulty_histogram: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, id: _Optional[int] = ..., text: _Optional[str] = ..., discipline: _Optional[str] = ..., popularity: _Optional[int] = ..., difficulty_histogram: _Optional[_Iterable[int]] = ...) -> None: ...

class KPRequest(_message.Message):
    __slots__ = ("kp_id", "text", "limit")
    KP_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    kp_id: int
    text: str
    limit: int
    def __init__(self, kp_id: _Optional[int] = ..., text: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class Neighbour(_message.Message):
    __slots__ = ("kp", "weight")
    KP_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    kp: KnowledgePoint
    weight: float
    def __init__(self, kp: _Optional[_Union[KnowledgePoint, _Mapping]] = ..., weight: _Optional[float] = ...) -> None: ...

class NeighboursReply(_message.Message):
    __slots__ = ("neighbours",)
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    neighbours: _containers.RepeatedCompositeFieldContainer[Neighbour]
    def __init__(self, neighbours: _Optional[_Iterable[_Union[Neighbour, _Mapping]]] = ...) -> None: ...

class SeedsForReply(_message.Message):
    __slots__ = ("seed_ids",)
    SEED_IDS_FIELD_NUMBER: _ClassVar[int]
    seed_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, seed_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SnapshotRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("version", "name", "offset", "data", "total", "last")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    version: int
    name: str
    offset: int
    data: bytes
    total: int
    last: bool
    def __init__(self, version: _Optional[int] = ..., name: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., total: _Optional[int] = ..., last: _Optional[bool] = ...) -> None: ...
