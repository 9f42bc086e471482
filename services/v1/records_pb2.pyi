from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Grade(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRADE_UNSPECIFIED: _ClassVar[Grade]
    GRADE_PRIMARY_SCHOOL: _ClassVar[Grade]
    GRADE_MIDDLE_SCHOOL: _ClassVar[Grade]
    GRADE_HIGH_SCHOOL: _ClassVar[Grade]
    GRADE_UNDERGRADUATE: _ClassVar[Grade]
    GRADE_GRADUATE_OR_COMPETITION: _ClassVar[Grade]

class SynthesisMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNTHESIS_MODE_UNSPECIFIED: _ClassVar[SynthesisMode]
    SYNTHESIS_MODE_LINK: _ClassVar[SynthesisMode]
    SYNTHESIS_MODE_MULTI_GRADE: _ClassVar[SynthesisMode]
    SYNTHESIS_MODE_HARD: _ClassVar[SynthesisMode]
GRADE_UNSPECIFIED: Grade
GRADE_PRIMARY_SCHOOL: Grade
GRADE_MIDDLE_SCHOOL: Grade
GRADE_HIGH_SCHOOL: Grade
GRADE_UNDERGRADUATE: Grade
GRADE_GRADUATE_OR_COMPETITION: Grade
SYNTHESIS_MODE_UNSPECIFIED: SynthesisMode
SYNTHESIS_MODE_LINK: SynthesisMode
SYNTHESIS_MODE_MULTI_GRADE: SynthesisMode
SYNTHESIS_MODE_HARD: SynthesisMode

class Seed(_message.Message):
    __slots__ = ("id", "question", "answer", "source", "subject", "discipline", "difficulty", "lang", "meta")
    class MetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DISCIPLINE_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    id: str
    question: str
    answer: str
    source: str
    subject: str
    discipline: str
    difficulty: Grade
    lang: str
    meta: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., question: _Optional[str] = ..., answer: _Optional[str] = ..., source: _Optional[str] = ..., subject: _Optional[str] = ..., discipline: _Optional[str] = ..., difficulty: _Optional[_Union[Grade, str]] = ..., lang: _Optional[str] = ..., meta: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AnnotatedSeed(_message.Message):
    __slots__ = ("seed", "kps", "discipline", "subdiscipline", "difficulty", "annotator", "prompt_tokens", "completion_tokens")
    SEED_FIELD_NUMBER: _ClassVar[int]
    KPS_FIELD_NUMBER: _ClassVar[int]
    DISCIPLINE_FIELD_NUMBER: _ClassVar[int]
    SUBDISCIPLINE_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    seed: Seed
    kps: _containers.RepeatedScalarFieldContainer[str]
    discipline: str
    subdiscipline: str
    difficulty: Grade
    annotator: str
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, seed: _Optional[_Union[Seed, _Mapping]] = ..., kps: _Optional[_Iterable[str]] = ..., discipline: _Optional[str] = ..., subdiscipline: _Optional[str] = ..., difficulty: _Optional[_Union[Grade, str]] = ..., annotator: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class PathSeed(_message.Message):
    __slots__ = ("id", "question", "answer", "kps", "discipline", "difficulty")
    ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    KPS_FIELD_NUMBER: _ClassVar[int]
    DISCIPLINE_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    id: str
    question: str
    answer: str
    kps: _containers.RepeatedScalarFieldContainer[str]
    discipline: str
    difficulty: Grade
    def __init__(self, id: _Optional[str] = ..., question: _Optional[str] = ..., answer: _Optional[str] = ..., kps: _Optional[_Iterable[str]] = ..., discipline: _Optional[str] = ..., difficulty: _Optional[_Union[Grade, str]] = ...) -> None: ...

class WalkPath(_message.Message):
    __slots__ = ("id", "kps", "seeds", "target_discipline", "target_difficulty", "mode", "graph_version", "scores", "walker")
    ID_FIELD_NUMBER: _ClassVar[int]
    KPS_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    TARGET_DISCIPLINE_FIELD_NUMBER: _ClassVar[int]
    TARGET_DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    GRAPH_VERSION_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    WALKER_FIELD_NUMBER: _ClassVar[int]
    id: str
    kps: _containers.RepeatedScalarFieldContainer[str]
    seeds: _containers.RepeatedCompositeFieldContainer[PathSeed]
    target_discipline: str
    target_difficulty: Grade
    mode: SynthesisMode
    graph_version: int
    scores: _containers.RepeatedScalarFieldContainer[float]
    walker: str
    def __init__(self, id: _Optional[str] = ..., kps: _Optional[_Iterable[str]] = ..., seeds: _Optional[_Iterable[_Union[PathSeed, _Mapping]]] = ..., target_discipline: _Optional[str] = ..., target_difficulty: _Optional[_Union[Grade, str]] = ..., mode: _Optional[_Union[SynthesisMode, str]] = ..., graph_version: _Optional[int] = ..., scores: _Optional[_Iterable[float]] = ..., walker: _Optional[str] = ...) -> None: ...

class SynthQA(_message.Message):
    __slots__ = ("id", "question", "answer", "rationale", "kps", "discipline", "difficulty", "path_id", "source_seed_ids", "models", "prompt_version", "prompt_tokens", "completion_tokens", "lang", "mode", "path_kps")
    ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    KPS_FIELD_NUMBER: _ClassVar[int]
    DISCIPLINE_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    PATH_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SEED_IDS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PATH_KPS_FIELD_NUMBER: _ClassVar[int]
    id: str
    question: str
    answer: str
    rationale: str
    kps: _containers.RepeatedScalarFieldContainer[str]
    discipline: str
    difficulty: Grade
    path_id: str
    source_seed_ids: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedScalarFieldContainer[str]
    prompt_version: str
    prompt_tokens: int
    completion_tokens: int
    lang: str
    mode: SynthesisMode
    path_kps: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., question: _Optional[str] = ..., answer: _Optional[str] = ..., rationale: _Optional[str] = ..., kps: _Optional[_Iterable[str]] = ..., discipline: _Optional[str] = ..., difficulty: _Optional[_Union[Grade, str]] = ..., path_id: _Optional[str] = ..., source_seed_ids: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[str]] = ..., prompt_version: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., lang: _Optional[str] = ..., mode: _Optional[_Union[SynthesisMode, str]] = ..., path_kps: _Optional[_Iterable[str]] = ...) -> None: ...

class ProbeBucket(_message.Message):
    __slots__ = ("discipline", "difficulty", "n", "accuracy", "deficit")
    DISCIPLINE_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    DEFICIT_FIELD_NUMBER: _ClassVar[int]
    discipline: str
    difficulty: Grade
    n: int
    accuracy: float
    deficit: float
    def __init__(self, discipline: _Optional[str] = ..., difficulty: _Optional[_Union[Grade, str]] = ..., n: _Optional[int] = ..., accuracy: _Optional[float] = ..., deficit: _Optional[float] = ...) -> None: ...

class ProbeReport(_message.Message):
    __slots__ = ("run_id", "checkpoint", "buckets", "benchmarks", "created_unix_ms")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    BENCHMARKS_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    checkpoint: str
    buckets: _containers.RepeatedCompositeFieldContainer[ProbeBucket]
    benchmarks: _containers.RepeatedScalarFieldContainer[str]
    created_unix_ms: int
    def __init__(self, run_id: _Optional[str] = ..., checkpoint: _Optional[str] = ..., buckets: _Optional[_Iterable[_Union[ProbeBucket, _Mapping]]] = ..., benchmarks: _Optional[_Iterable[str]] = ..., created_unix_ms: _Optional[int] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("topic", "partition", "offset", "key", "payload", "error", "attempts", "service", "failed_unix_ms")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    FAILED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    offset: int
    key: bytes
    payload: bytes
    error: str
    attempts: int
    service: str
    failed_unix_ms: int
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., key: _Optional[bytes] = ..., payload: _Optional[bytes] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., service: _Optional[str] = ..., failed_unix_ms: _Optional[int] = ...) -> None: ...

class UsageReport(_message.Message):
    __slots__ = ("run", "service", "replica", "model", "requests", "failed", "prompt_tokens", "completion_tokens", "cost", "records", "unix_ms")
    RUN_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    run: str
    service: str
    replica: str
    model: str
    requests: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    records: int
    unix_ms: int
    def __init__(self, run: _Optional[str] = ..., service: _Optional[str] = ..., replica: _Optional[str] = ..., model: _Optional[str] = ..., requests: _Optional[int] = ..., failed: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost: _Optional[float] = ..., records: _Optional[int] = ..., unix_ms: _Optional[int] = ...) -> None: ...
