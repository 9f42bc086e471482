"""GGUF weights as a plain transformers checkpoint, converted once and cached on disk.

transformers loads a GGUF by dequantising every tensor and converting its tokenizer: 30-60 s for SmolLM2-135M on a
CPU, in every process that loads it (the extractor, synth and trainer each would). The first load writes the
converted float32 checkpoint (safetensors, exact dequantised values) to the cache; later loads read it in seconds.
Cache root: $LINKSYN_CACHE_DIR, else $XDG_CACHE_HOME/linksyn, else ~/.cache/linksyn. If it is not writable the
GGUF is loaded directly, as before.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from linksyn.common.ids import content_id
from linksyn.common.llm.spec import HFSource

log = logging.getLogger(__name__)

_DONE = ".linksyn-complete"


def cache_root() -> Path:
    env = os.environ.get("LINKSYN_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "linksyn"


def plain_source(source: HFSource) -> HFSource:
    """`source` itself unless it is a GGUF; then the cached converted checkpoint (converting it on first use)."""
    if not source.gguf_file:
        return source
    import transformers

    gguf = Path(source.path) / source.gguf_file
    st = gguf.stat()
    key = content_id(str(gguf.resolve()), st.st_size, int(st.st_mtime), transformers.__version__)[:16]
    target = cache_root() / "models" / f"{gguf.stem}-{key}"
    if (target / _DONE).exists():
        return HFSource(str(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as e:
        log.info("model cache %s not writable (%s); loading the GGUF directly", target.parent, e)
        return source
    try:
        _convert(gguf, tmp)
        (tmp / _DONE).write_text(str(gguf))
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same conversion first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("converted %s to %s (cached for later loads)", gguf.name, target)
    return HFSource(str(target))


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    kw = {"gguf_file": gguf.name, "local_files_only": True}
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), **kw)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype=torch.float32, **kw)
    # The dequantised model stays marked as quantized (save_pretrained refuses it): rebuild a plain one.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    plain.save_pretrained(out)
    tok.save_pretrained(out)
