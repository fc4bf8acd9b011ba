"""``swarmstream models check``: call every catalog model once and say what happened.

A smoke test for a catalog before a worker depends on it: each model gets one tiny
prompt, all at once, and one :class:`CheckRow` comes back per model, never an
exception, so one bad key or one dead endpoint cannot hide the state of the rest.

* ``reachable`` means the call completed with a usable reply; any failure (a 500,
  a 401, a timeout) is unreachable, with its ``failure_class`` from failures.py.
* A missing key variable is reported as ``auth`` without calling, and the message
  names the variable, never a value (keys never leave the environment).
* A model with no endpoint (a simulated model loaded without ``sim_url``) is
  reported as ``bad_request``: the call as configured cannot be made.
* The prompt's answer is not parsed: the check is about the route, not the answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from swarmstream.agents.models.catalog import Catalog, ModelSpec, load_catalog
from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.models.providers import (
    ChatRequest,
    MissingApiKeyError,
    build_provider,
    now_ms,
)

CHECK_PROMPT = "Reply with the word: ok"
CHECK_MAX_TOKENS = 5
"""Enough for "ok" in any tokenizer; keeps a check of a paid catalog at a fraction of a cent."""

MESSAGE_CHARS = 120
"""A reply or error message is cut to this in a row, so the table stays one line per model."""


@dataclass(frozen=True)
class CheckRow:
    """The outcome of one model's check call.

    ``latency_ms`` is the call's duration (success or failure); None when no call was
    made. Tokens and ``cost_micros`` (integer micro-dollars) are 0 unless reachable.
    ``message`` is the start of the reply, or what went wrong.
    """

    model_id: str
    provider: str
    reachable: bool
    latency_ms: int | None
    input_tokens: int
    output_tokens: int
    cost_micros: int
    failure_class: str | None
    message: str


async def check_models(
    catalog: Catalog,
    *,
    pool: ClientPool,
    env: Mapping[str, str] = os.environ,
    timeout_s: float = 20,
) -> list[CheckRow]:
    """Call every model of ``catalog`` once, concurrently; one row per model, in catalog order."""
    return list(
        await asyncio.gather(
            *(check_model(spec, pool=pool, env=env, timeout_s=timeout_s) for spec in catalog.models.values())
        )
    )


async def check_model(
    spec: ModelSpec, *, pool: ClientPool, env: Mapping[str, str] = os.environ, timeout_s: float = 20
) -> CheckRow:
    """One model's check call; failures become rows, never exceptions."""
    try:
        provider = build_provider(spec, pool, env)
    except MissingApiKeyError as exc:  # its message names the variable only
        return _failed(spec, FailureClass.AUTH, str(exc), latency_ms=None)
    except ValueError as exc:  # no endpoint
        return _failed(spec, FailureClass.BAD_REQUEST, str(exc), latency_ms=None)
    request = ChatRequest(prompt=CHECK_PROMPT, max_tokens=CHECK_MAX_TOKENS, deadline_ms=now_ms() + int(timeout_s * 1000))
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):  # a guard: providers honour the deadline themselves
            reply = await provider.complete(request)
    except ProviderError as exc:
        return _failed(spec, exc.failure_class, str(exc), latency_ms=_elapsed_ms(started))
    except TimeoutError:
        message = f"no reply within {round(timeout_s * 1000)} ms"
        return _failed(spec, FailureClass.TIMEOUT, message, latency_ms=_elapsed_ms(started))
    return CheckRow(
        model_id=spec.id,
        provider=spec.provider,
        reachable=True,
        latency_ms=reply.latency_ms,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        cost_micros=reply.cost_micros,
        failure_class=None,
        message=_one_line(reply.text) or f"(empty reply, finish_reason {reply.finish_reason})",
    )


def _failed(spec: ModelSpec, failure_class: FailureClass, message: str, *, latency_ms: int | None) -> CheckRow:
    return CheckRow(
        model_id=spec.id,
        provider=spec.provider,
        reachable=False,
        latency_ms=latency_ms,
        input_tokens=0,
        output_tokens=0,
        cost_micros=0,
        failure_class=str(failure_class),
        message=_one_line(message),
    )


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


_COLUMNS = ("model", "provider", "status", "latency_ms", "in_tok", "out_tok", "cost_micros", "message")
_RIGHT_ALIGNED = frozenset({"latency_ms", "in_tok", "out_tok", "cost_micros"})


def render_rows(rows: Sequence[CheckRow]) -> str:
    """An aligned text table, one line per model; ``status`` is "ok" or the failure class."""
    cells = [
        (
            row.model_id,
            row.provider,
            "ok" if row.reachable else (row.failure_class or "failed"),
            "-" if row.latency_ms is None else str(row.latency_ms),
            str(row.input_tokens) if row.reachable else "-",
            str(row.output_tokens) if row.reachable else "-",
            str(row.cost_micros) if row.reachable else "-",
            row.message,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [_COLUMNS, *cells]) for i in range(len(_COLUMNS))]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if name in _RIGHT_ALIGNED else value.ljust(width)
            for name, value, width in zip(_COLUMNS, values, widths)
        ]
        return "  ".join(parts).rstrip()

    reachable = sum(row.reachable for row in rows)
    return "\n".join([line(_COLUMNS), *(line(c) for c in cells), f"{reachable}/{len(rows)} models reachable"])


def main_check(models_path: Path | str, sim_url: str | None, json_out: bool) -> int:
    """``swarmstream models check``: print the table (or, with ``json_out``, one JSON object
    ``{"models": [...]}`` as the last line); 0 when every model is reachable, else 1.

    Simulated models need a fleet: without ``sim_url`` one is started in this process
    for the catalog's simulated models, so the command works out of the box.
    CatalogError propagates (the CLI prints it).
    """
    rows = asyncio.run(_check_path(models_path, sim_url))
    if json_out:
        print(json.dumps({"models": [asdict(row) for row in rows]}))
    else:
        print(render_rows(rows))
    return 0 if all(row.reachable for row in rows) else 1


async def _check_path(models_path: Path | str, sim_url: str | None) -> list[CheckRow]:
    from swarmstream.agents.models.simulated import (
        SimFleet,  # aiohttp.web, only needed here
    )

    catalog = load_catalog(models_path, sim_url=sim_url)
    profiles = {
        spec.id: spec.simulated
        for spec in catalog.models.values()
        if spec.simulated is not None and spec.endpoint is None
    }
    async with ClientPool() as pool:
        if not profiles:
            return await check_models(catalog, pool=pool)
        async with SimFleet(profiles) as fleet:
            assert fleet.base_url is not None
            catalog = load_catalog(models_path, sim_url=fleet.base_url)
            return await check_models(catalog, pool=pool)
