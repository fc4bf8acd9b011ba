"""What a request's ``model`` runs: a catalog model alone, or a route of the swarm.

``swarm/consensus`` (``:<strategy>`` picks the vote, ``swarm/consensus:weighted``),
``chain/<name>``, ``select/<policy>``, ``workflow/<name>``, a route declared in the
gateway's routes file (any task fields, as defaults), or a catalog model id (mode
``single``). Pure: the names it knows are passed in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import GatewayError

BUILTIN_PREFIXES = ("swarm/consensus", "chain/", "select/", "workflow/")


@dataclass(frozen=True)
class Route:
    """A model name and the task fields it sets (the request's ``swarm`` object overrides them)."""

    name: str
    fields: Mapping[str, Any] = field(default_factory=dict)


def load_routes(path: Path | None) -> dict[str, Route]:
    """Declared routes: ``routes: {name: {task field: value, ...}}`` (YAML)."""
    if path is None:
        return {}
    raw = yaml.safe_load(Path(path).read_text()) or {}
    return {name: Route(name, dict(fields or {})) for name, fields in (raw.get("routes") or {}).items()}


def resolve(model: str, *, models: Collection[str], declared: Mapping[str, Route],
            chains: Collection[str] = (), policies: Collection[str] = (), workflows: Collection[str] = ()) -> Route:
    """The route ``model`` names; a 404-style error naming ``model`` when it names nothing
    (a chain, policy or workflow is checked only where its names are given)."""
    if model in declared:
        return declared[model]
    if model == "swarm/consensus":
        return Route(model, {"mode": "consensus"})
    if model.startswith("swarm/consensus:") and model != "swarm/consensus:":
        return Route(model, {"mode": "consensus", "strategy": model.split(":", 1)[1]})
    for prefix, mode, key, known in (("chain/", "chain", "chain", chains), ("select/", "select", "policy", policies),
                                     ("workflow/", "consensus", "workflow", workflows)):
        if model.startswith(prefix) and len(model) > len(prefix):
            name = model[len(prefix):]
            if known and name not in known:
                raise unknown(model, f"no {key} {name!r} (known: {', '.join(sorted(known))})")
            return Route(model, {"mode": mode, key: name})
    if model in models:
        return Route(model, {"mode": "single", "models": [model]})
    raise unknown(model, "not a catalog model or a route (GET /v1/models lists them)")


def unknown(model: str, why: str) -> GatewayError:
    return GatewayError(404, "not_found", f"model {model!r}: {why}", param="model", retry=False)


def listed(models: Collection[str], declared: Mapping[str, Route], chains: Collection[str] = (),
           policies: Collection[str] = (), workflows: Collection[str] = ()) -> list[str]:
    """Every model name a request may use, for ``GET /v1/models``."""
    names = ["swarm/consensus", "swarm/consensus:majority", "swarm/consensus:weighted"]
    names += [f"chain/{c}" for c in sorted(chains)] + [f"select/{p}" for p in sorted(policies)]
    names += [f"workflow/{w}" for w in sorted(workflows)] + sorted(declared) + sorted(models)
    return list(dict.fromkeys(names))
