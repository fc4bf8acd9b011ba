"""The HTTP edge: pooled clients per endpoint, and one POST that never retries.

httpx is the API, aiohttp does the I/O: httpx's own pool caps out around 45
calls/s here (encode/httpx#3215; numbers in DESIGN.md "HTTP to providers"),
while the ``httpx-aiohttp`` transport keeps ~700 calls/s at 200 in flight.

Guarantees:

* one ``httpx.AsyncClient`` per base URL, so connections to one endpoint are
  reused by every model served there, and endpoints do not starve each other;
* no hidden retries (httpx has none, the transport's ``retries`` is 0, redirects
  are not followed): retrying is a policy decision of agents/fallback, which
  must see every failure to count it;
* every call is bounded by a total timeout, not only per-socket-read ones: the
  aiohttp transport maps httpx's connect/read/pool timeouts onto aiohttp's
  per-operation ones, and a server that trickles bytes would never trip those;
* every transport failure leaves as ``ProviderError`` (timeout or network);
* a provider's calls are built once as a :class:`JsonTarget` (URL and headers) and each
  goes to the aiohttp transport directly, past ``httpx.AsyncClient.send``, whose
  per-call work measured ~45% of a worker's CPU over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport
from swarmstream.agents.models.failures import FailureClass, ProviderError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolSettings:
    """Connection limits and default timeouts of every client in a ClientPool."""

    max_connections: int = 256
    """Per endpoint. Above the default ``max_in_flight`` (64) of a few models sharing one
    endpoint; aiohttp queues further requests until a connection frees up."""
    keepalive_expiry_s: float = 30
    """Idle connections are closed after this; below the ~60 s idle timeout of common load balancers,
    so we close first instead of writing into a socket the server has dropped."""
    connect_timeout_s: float = 5
    """TCP + TLS setup; longer than any healthy handshake, short enough to fail over to the next model."""
    read_timeout_s: float = 30
    """Default gap allowed between bytes; each call also passes its own total budget."""


class ClientPool:
    """One pooled ``httpx.AsyncClient`` per base URL, created on first use.

    Clients must be used, and the pool closed, on one event loop (aiohttp sessions
    are bound to the loop that creates them).
    """

    def __init__(self, settings: PoolSettings = PoolSettings()) -> None:
        self.settings = settings
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._transports: dict[str, AiohttpTransport] = {}

    def get(self, base_url: str) -> httpx.AsyncClient:
        """The client for ``base_url`` (trailing slashes ignored); requests take paths relative to it."""
        key = base_url.rstrip("/")
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._new_client(key)
        return client

    def target(self, base_url: str, path: str, headers: Mapping[str, str]) -> JsonTarget:
        """Where a provider POSTs its JSON: ``path`` under ``base_url``, with ``headers``."""
        client = self.get(base_url)
        return JsonTarget(client, self._transports[base_url.rstrip("/")], path, headers)

    def _new_client(self, base_url: str) -> httpx.AsyncClient:
        settings = self.settings
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
            keepalive_expiry=settings.keepalive_expiry_s,
        )
        # Limits go to the transport: httpx ignores its own `limits` when a transport is given.
        transport = self._transports[base_url] = AiohttpTransport(limits=limits, retries=0)
        return httpx.AsyncClient(
            base_url=base_url + "/",
            transport=transport,
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.read_timeout_s,
                pool=settings.read_timeout_s,
            ),
            follow_redirects=False,
            # Environment proxies would make httpx mount its *own* transport for matching
            # URLs, silently bypassing the aiohttp pool; proxies are not supported here.
            trust_env=False,
        )

    async def aclose(self) -> None:
        """Close every client and its connections; the pool can be reused afterwards."""
        clients, self._clients, self._transports = list(self._clients.values()), {}, {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@dataclass(frozen=True)
class RawResponse:
    """A complete HTTP response, body read: what a provider interprets."""

    status_code: int
    headers: httpx.Headers
    body: bytes


class JsonTarget:
    """Where one provider POSTs JSON: the absolute URL and the merged headers, made once,
    and the pool's transport, which each call's ``httpx.Request`` goes to directly.

    ``client.post(path, ...)`` joins and re-parses the URL, merges the client's default
    headers, runs the auth and redirect machinery (neither is used here: keys are headers,
    redirects are not followed) and copies every response's cookies into a jar (via a
    urllib request per call): together ~45% of a worker's CPU over HTTP. Cookies a server
    sets are not kept or sent back; a model API call is stateless. The headers may hold an
    API key: this object's repr shows the URL only."""

    def __init__(self, client: httpx.AsyncClient, transport: httpx.AsyncBaseTransport, path: str,
                 headers: Mapping[str, str]) -> None:
        self.transport = transport
        self.connect_timeout_s = client.timeout.connect
        self.url = client.build_request("POST", path).url  # the client's own join of base URL and path
        self.headers = httpx.Headers(client.headers)
        self.headers.update({**headers, "content-type": "application/json"})

    def __repr__(self) -> str:
        return f"JsonTarget({str(self.url)!r})"


async def post_json(
    target: JsonTarget,
    *,
    body: Mapping[str, Any],
    timeout_s: float,
    secrets: Iterable[str] = (),
) -> RawResponse:
    """POST ``body`` as JSON and read the whole response within ``timeout_s`` in total.

    Any HTTP status is returned, not raised: the provider knows its error shapes.
    Transport failures raise ProviderError: TIMEOUT when time ran out (total,
    connect or read), NETWORK for refused/reset/closed connections and DNS/TLS
    errors. ``secrets`` are redacted from any message built here.
    """
    if timeout_s <= 0:
        raise ProviderError(FailureClass.TIMEOUT, "no time left before the deadline")
    timeout = httpx.Timeout(
        connect=min(target.connect_timeout_s or timeout_s, timeout_s),
        read=timeout_s,
        write=timeout_s,
        pool=timeout_s,
    )
    request = httpx.Request("POST", target.url, headers=target.headers, content=orjson.dumps(body),
                            extensions={"timeout": timeout.as_dict()})
    try:
        async with asyncio.timeout(timeout_s):
            response = await target.transport.handle_async_request(request)
            try:
                await response.aread()  # then the connection goes back to the pool
            except BaseException:
                await response.aclose()
                raise
    except httpx.TransportError as exc:
        raise transport_failure(exc, secrets) from exc
    except TimeoutError:
        raise ProviderError(
            FailureClass.TIMEOUT, f"no complete response within {round(timeout_s * 1000)} ms"
        ) from None
    except (aiohttp.ClientError, OSError) as exc:  # raised past the transport's exception map
        raise ProviderError(FailureClass.NETWORK, f"{type(exc).__name__}: {exc}", secrets=secrets) from exc
    return RawResponse(status_code=response.status_code, headers=response.headers, body=response.content)


def transport_failure(exc: httpx.TransportError, secrets: Iterable[str] = ()) -> ProviderError:
    """Classify a transport error as TIMEOUT or NETWORK.

    The aiohttp transport's exception map is lossy (a refused connection arrives as
    ``httpx.ConnectTimeout``), so the underlying aiohttp/OS error decides when there
    is one: only a genuine timeout is TIMEOUT.
    """
    cause = exc.__cause__
    if isinstance(cause, (aiohttp.ClientError, OSError)):
        timed_out = isinstance(cause, TimeoutError)
        detail = f"{type(cause).__name__}: {cause}"
    else:
        timed_out = isinstance(exc, httpx.TimeoutException)
        detail = f"{type(exc).__name__}: {exc}"
    failure_class = FailureClass.TIMEOUT if timed_out else FailureClass.NETWORK
    return ProviderError(failure_class, detail, secrets=secrets)
