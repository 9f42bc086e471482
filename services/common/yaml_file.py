"""Reading the YAML files linksyn is given (the configuration, a taxonomy): one place, so every such file fails the
same way, with a message naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: str | Path, what: str, error: type[Exception] = ValueError) -> Any:
    """The YAML document in `path`; `error` naming `what` and the path if it does not exist or does not parse.

    A syntax error is reported by line and column only: PyYAML's own message quotes the offending line, which in a
    configuration file may hold a password or a token."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{what} {str(p)!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} {str(p)!r} is not UTF-8 text (byte {e.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise error(f"{what} {str(p)!r} is not valid YAML{where} ({type(e).__name__}; the line is not quoted: "
                    "it may hold a secret)") from None
