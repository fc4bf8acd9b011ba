"""`swarmstream stats` reads what the workers wrote."""

from __future__ import annotations

from swarmstream.schemas.models import TaskRequest
from swarmstream.streams.cli.stats_view import collect, render


async def test_stats_show_models_chains_and_breakers(stack) -> None:
    for chain in ("two", "two", "breaker", "breaker", "breaker"):
        task = TaskRequest(prompt="What is 1 + 5? Answer with a number.", answer_type="number", mode="chain",
                           chain=chain)
        await stack.client.result(await stack.client.submit(task), timeout_s=30)

    view = await collect(stack.settings.model_copy(update={"broker": stack.broker_url}))

    assert view["models"]["flaky|*"]["failures"] == {"server_error": 2}
    assert view["models"]["fast-a|*"]["successes"] >= 5
    assert view["models"]["fast-a|math"]["latency_p50_ms"] is not None
    assert view["chains"]["two"]["attempts.server_error"] == 2
    assert view["chains"]["two"]["fallbacks"] == 2
    assert view["breakers"]["breaker"] == "open"
    assert {"model": "breaker", "from": "closed", "to": "open", "count": 1} in view["breaker_transitions"]
    assert "breaker" in render(view)
