"""Reading a YAML config file and saying exactly where it is wrong.

The catalog, the chains file and any later config share this, so every
config error reads the same way: ``<file>: <path in file>: <what is wrong>``,
one line per problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


def read_yaml_mapping(path: Path, *, what: str, top: str, error: type[Exception]) -> dict[str, Any]:
    """The file's top-level mapping, or ``error`` naming the file and the problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path.name}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise error(f"{path.name}: expected a mapping with '{top}' at the top, got {type(raw).__name__}")
    return raw


def format_validation_error(source: str, exc: ValidationError) -> str:
    """One line per error: ``models.yaml: models[2].provider: Input should be ...``.

    A validator may narrow the location with ``ctx["subpath"]`` (a field inside a
    value it checked as a whole)."""
    lines = []
    for error in exc.errors(include_url=False):
        subpath = (error.get("ctx") or {}).get("subpath")
        location = _location(list(error["loc"]), subpath)
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {location}: {message}" if location else f"{source}: {message}")
    return "\n".join(lines)


def _location(loc: list[int | str], subpath: str | None = None) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    if subpath:
        text += subpath if subpath.startswith("[") or not text else f".{subpath}"
    return text
