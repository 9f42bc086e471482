from linksyn.v1 import common_pb2 as _common_pb2
from linksyn.v1 import records_pb2 as _records_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExtractRequest(_message.Message):
    __slots__ = ("seed",)
    SEED_FIELD_NUMBER: _ClassVar[int]
    seed: _records_pb2.Seed
    def __init__(self, seed: _Optional[_Union[_records_pb2.Seed, _Mapping]] = ...) -> None: ...
