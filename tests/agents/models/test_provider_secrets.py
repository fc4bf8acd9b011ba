"""The key reaches the upstream and nowhere else: not in exceptions, tracebacks or logs."""

from __future__ import annotations

import logging
import traceback

import pytest
from fake_upstream import FakeUpstream
from swarmstream.agents.models.failures import ProviderError
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.models.providers import ChatRequest, build_provider
from test_provider_contract import FAILURE_CASES, KEY_ENV, make_spec

# One key shaped like OpenAI's (caught by the key pattern too), one that is not
# (only exact-secret redaction can catch it).
FAKE_KEYS = ["sk-proj-secrets-test-9f8e7d6c5b4a", "plainfakekey0123456789abcdef"]


@pytest.mark.parametrize("fake_key", FAKE_KEYS)
async def test_key_never_leaks(
    fake_key: str,
    upstream: FakeUpstream,
    pool: ClientPool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    closed_port_url: str,
    hangup_url: str,
) -> None:
    monkeypatch.setenv(KEY_ENV, fake_key)
    caplog.set_level(logging.DEBUG)  # every logger, httpx and aiohttp included
    cases = [(p.values[0], p.values[1], upstream.url + "/v1") for p in FAILURE_CASES]
    cases += [(protocol, "ok", url) for protocol in ("openai", "anthropic") for url in (closed_port_url, hangup_url)]
    cases += [(protocol, "slow", upstream.url + "/v1") for protocol in ("openai", "anthropic")]
    texts: list[str] = []
    first_request = len(upstream.received)
    for protocol, scenario, endpoint in cases:
        timeout_s = 0.2 if scenario == "slow" else 5
        provider = build_provider(make_spec(protocol, upstream, endpoint=endpoint, timeout_s=timeout_s), pool)
        texts.append(repr(provider))
        with pytest.raises(ProviderError) as caught:
            await provider.complete(ChatRequest(prompt=scenario))
        error = caught.value
        texts += [str(error), repr(error), error.message, *map(str, error.args)]
        texts.append("".join(traceback.format_exception(error)))  # the whole chain, causes included

    auth_echoes = [r for r in upstream.received[first_request:] if r.body["messages"][-1]["content"] in ("auth", "forbidden")]
    assert auth_echoes, "the upstream should have seen the auth scenarios"
    for received in auth_echoes:
        sent = received.headers.get("x-api-key") or received.headers["Authorization"].removeprefix("Bearer ")
        assert sent == fake_key  # the key does go where it belongs
    assert any("[REDACTED]" in text for text in texts)  # the upstream echoed it; we removed it
    # Every record at DEBUG, of every logger, is checked. (httpx's client logged each request at
    # INFO; calls now go to the transport directly, agents/models/http.JsonTarget, and nothing
    # on these paths logs, so there may be none: the check holds for any that a change adds.)
    records = [f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records]
    for text in texts + records:
        assert fake_key not in text
        assert fake_key[-12:] not in text  # not even a tail of it
