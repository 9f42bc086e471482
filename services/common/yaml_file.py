"""Reading the YAML files linksyn is given (the configuration, a taxonomy): one place, so every such file fails the
same way, with a message naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: str | Path, what: str, error: type[Exception] = ValueError) -> Any:
    """The YAML document in `path`; `error` naming `what` and the path if it does not exist or does not parse."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{what} {str(p)!r} does not exist")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise error(f"{what} {str(p)!r} is not valid YAML: {e}") from e
