"""Transform steps: registered Python functions over the workflow's view.

A ``transform`` step names a function, built in (``vote``, ``constant``) or by
dotted path (``package.module:function``); it is called as
``function(scope, **args)`` with the step's view (see :mod:`.templates` for the
roots: ``task``, ``steps``, ``depth``, ``budget_left_micros``, ...) and the
step's ``args`` from the workflows file, and returns either the answer (a
string) or a mapping with ``answer`` and optionally ``confidence``,
``agreement``, ``answered_by`` and ``detail``. A transform costs no model call;
anything it raises ends the workflow ``failed`` with the step named.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

Transform = Callable[..., "str | Mapping[str, Any]"]


class TransformError(ValueError):
    """A transform that cannot be found or returned something unusable."""


def vote(scope: Mapping[str, Any], *, steps: list[str], min_share: float = 0.0) -> dict[str, Any]:
    """Majority over the answers of ``steps`` (each model's vote in a consensus step counts once,
    a single-answer step counts its answer once). A tie goes to the answer voted first, so the
    decision is reproducible from the step outputs; ``confidence`` is the winner's share."""
    ballots: list[tuple[str, str]] = []
    outputs = scope.get("steps") or {}
    for name in steps:
        output = outputs.get(name)
        if not output:
            continue
        votes = output.get("votes") or []
        if votes:
            ballots += [(str(model), str(answer)) for model, answer in votes]
        elif output.get("answer") is not None:
            ballots.append((output.get("answered_by") or name, str(output["answer"])))
    if not ballots:
        return {"answer": None, "confidence": 0.0, "agreement": 0.0, "detail": "no votes"}
    counts = Counter(answer for _, answer in ballots)
    first_seen = {answer: i for i, (_, answer) in reversed(list(enumerate(ballots)))}
    winner = max(counts, key=lambda a: (counts[a], -first_seen[a]))
    share = counts[winner] / len(ballots)
    tally = ", ".join(f"{a}: {n}" for a, n in counts.most_common())
    return {
        "answer": winner if share >= min_share else None,
        "confidence": share,
        "agreement": share,
        "detail": f"{len(ballots)} votes ({tally})",
    }


def constant(scope: Mapping[str, Any], *, answer: str, confidence: float = 1.0) -> dict[str, Any]:
    """Always ``answer``: a placeholder step, and a fixed point for tests."""
    return {"answer": answer, "confidence": confidence, "agreement": 1.0}


BUILT_IN: dict[str, Transform] = {"vote": vote, "constant": constant}


def resolve_transform(name: str) -> Transform:
    """The function ``name`` names: a built-in, or ``package.module:function``."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    return resolve_dotted(name, what="transform", known=BUILT_IN)


def resolve_dotted(name: str, *, what: str, known: Mapping[str, Any]) -> Any:
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        raise TransformError(f"unknown {what} {name!r}: name a built-in ({', '.join(sorted(known))}) "
                             "or write package.module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TransformError(f"{what} {name!r}: cannot import {module_name!r}: {exc}") from None
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise TransformError(f"{what} {name!r}: module {module_name!r} has no {attr!r}") from None
    if not callable(target):
        raise TransformError(f"{what} {name!r}: {attr!r} is not callable")
    return target


def normalise(returned: Any) -> dict[str, Any]:
    """A transform's return value as a step output's fields."""
    if returned is None or isinstance(returned, str):
        return {"answer": returned}
    if isinstance(returned, Mapping):
        unknown = set(returned) - {"answer", "confidence", "agreement", "answered_by", "detail", "votes"}
        if unknown:
            raise TransformError(f"returned unknown field(s) {sorted(unknown)} (allowed: answer, confidence, "
                                 "agreement, answered_by, detail, votes)")
        out = dict(returned)
        if out.get("answer") is not None:
            out["answer"] = str(out["answer"])
        return out
    raise TransformError(f"returned {type(returned).__name__}: return a string or a mapping with 'answer'")
