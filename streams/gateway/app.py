"""The gateway's HTTP app (aiohttp): each request one task, answered from its result.

    POST /v1/chat/completions   OpenAI          POST /v1/messages   Anthropic
    GET  /v1/models             models, routes  GET  /v1/swarm/tasks/{task_id}

A request is checked in this order, each failure its own status: the key (401), the body
(400 naming the field), the model (404), the key's rate (429), the instance's in-flight
limit (503), the key's budget (429). Then the task is sent (or, for an ``Idempotency-Key``
seen before, not sent again) and the answer waits on this instance's reply topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from swarmstream.agents.fallback.chains import load_chains
from swarmstream.agents.models.catalog import load_catalog
from swarmstream.agents.selection.policies import POLICIES
from swarmstream.agents.workflows.dsl import load_workflows
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import TaskRequest, TaskResult, new_task_id, now_ms
from swarmstream.streams.app.security import aiokafka_security
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.engine.broker import bootstrap_servers

from . import anthropic_wire, openai_wire
from .chat import ChatCall, to_task
from .errors import GatewayError, invalid
from .idempotency import IDEMPOTENT, Idempotency
from .keys import Keys, load_keys
from .outcome import answer_of, error_of, headers_of
from .replies import Replies
from .routes import Route, listed, load_routes, resolve
from .settings import GatewaySettings

log = logging.getLogger("swarmstream.gateway")

MAX_BODY_BYTES = 2 * 1024 * 1024
"""A request body: a task holds at most 256 KiB of chat text (``schemas/limits.py``), JSON
escapes take up to 6x for non-ASCII; bigger is refused by aiohttp before it is read."""


LISTEN_BACKLOG = 4096
"""Connections the kernel queues before the gateway accepts them: a burst of new clients (1,000
at once in tests/gateway/test_scale.py) overflowed the default 128 and some were reset."""


@dataclass(frozen=True)
class Protocol:
    name: str
    read: Callable[[Any, web.Request], ChatCall]
    response: Callable[[str, TaskResult, Any], dict[str, Any]]
    error_body: Callable[[GatewayError], dict[str, Any]]
    stream: type


OPENAI = Protocol("openai", lambda body, request: openai_wire.read_request(body), openai_wire.response,
                  openai_wire.error_body, openai_wire.Stream)
ANTHROPIC = Protocol("anthropic", lambda body, request: anthropic_wire.read_request(body, request.headers.get("x-swarm")),
                     anthropic_wire.response, anthropic_wire.error_body, anthropic_wire.Stream)


def _is_retry(request: web.Request) -> bool:
    """Whether the request says it is a retry: the SDKs count theirs in ``x-stainless-retry-count``."""
    return request.headers.get("x-stainless-retry-count", "0") not in ("", "0")


def _key_of(request: web.Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


class Gateway:
    def __init__(self, settings: Settings, gateway: GatewaySettings, broker_url: str | None = None) -> None:
        self.settings = settings
        self.config = gateway
        self._url = broker_url or settings.broker
        self._servers = bootstrap_servers(self._url)
        self._security = aiokafka_security(settings)
        catalog = load_catalog(settings.models, sim_url=settings.sim_url or "http://127.0.0.1:1/v1")
        self.models = sorted(catalog.models)
        try:
            self.chains = sorted(load_chains(settings.chains, known_models=dict.fromkeys(self.models, 0)).chains)
        except (OSError, ValueError):
            self.chains = []
        self.policies = sorted(POLICIES)
        try:
            self.workflows = sorted(load_workflows(settings.workflows).workflows)
        except (OSError, ValueError):
            self.workflows = []
        self.routes: dict[str, Route] = load_routes(gateway.routes)
        self.keys = Keys(load_keys(gateway.keys))
        self.idempotency = Idempotency()
        self.replies = Replies(self._url, self._servers, settings.topics.results, gateway.instance, self._security)
        self._producer: AIOKafkaProducer | None = None
        self.sent = 0

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=self._servers, acks="all", linger_ms=1, **self._security)
        await self._producer.start()
        await self.replies.start()

    async def stop(self) -> None:
        await self.replies.stop()
        if self._producer is not None:
            await self._producer.stop()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/swarm/tasks/{task_id}", self._task)
        return app

    # --- handlers ---------------------------------------------------------------------------

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, OPENAI)

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, ANTHROPIC)

    async def _models(self, request: web.Request) -> web.Response:
        try:
            self.keys.authenticate(_key_of(request))
        except GatewayError as error:
            return _error(OPENAI, error)
        names = listed(self.models, self.routes, self.chains, self.policies, self.workflows)
        # one list both SDKs read: OpenAI's fields and Anthropic's (type, display_name, created_at, paging)
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "swarmstream", "type": "model",
                 "display_name": name, "created_at": "1970-01-01T00:00:00Z"} for name in names]
        return web.Response(body=orjson.dumps({"object": "list", "data": data, "has_more": False,
                                               "first_id": names[0] if names else None,
                                               "last_id": names[-1] if names else None}),
                            content_type="application/json")

    async def _task(self, request: web.Request) -> web.Response:
        try:
            self.keys.authenticate(_key_of(request))
        except GatewayError as error:
            return _error(OPENAI, error)
        task_id = request.match_info["task_id"]
        result = await self.replies.lookup(task_id)
        if result is None:
            return _error(OPENAI, GatewayError(404, "not_found", f"no result for task {task_id} (yet)",
                                               task_id=task_id))
        return web.Response(body=orjson.dumps(result.model_dump()), content_type="application/json",
                            headers=headers_of(result))

    async def _chat(self, request: web.Request, protocol: Protocol) -> web.StreamResponse:
        reservation = None
        try:
            entry = self.keys.authenticate(_key_of(request))
            raw = await request.read()
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise invalid("the body is not JSON") from None
            call = protocol.read(body, request)
            route = resolve(call.model, models=self.models, declared=self.routes, chains=self.chains,
                            policies=self.policies, workflows=self.workflows)
            self.keys.admit(entry)
            if self.replies.waiting >= self.config.max_in_flight:
                raise GatewayError(503, "overloaded", f"this gateway has {self.config.max_in_flight} requests in "
                                   "flight; retry shortly")
            task, fresh = self._task_for(request, call, route, self.keys.tenant(entry), raw)
            if fresh and task.task_id.startswith(IDEMPOTENT) and _is_retry(request):
                # a retry this instance has no memory of (a restart, another instance took the
                # first try): the task may have run already; its result answers without a new task
                fresh = await self.replies.lookup(task.task_id) is None
            if fresh:  # only the request that sends the task reserves and pays: a retry never does
                try:
                    reservation = self.keys.reserve(entry, now_ms())
                    await self._send(task)
                except (GatewayError, KafkaError) as exc:
                    self.idempotency.release(task.task_id)
                    if isinstance(exc, GatewayError):
                        raise
                    raise GatewayError(503, "overloaded", f"the task topic is unreachable: {type(exc).__name__}",
                                       task_id=task.task_id) from None
            if call.stream:
                return await self._stream(request, protocol, call, task, reservation, fresh)
            result = await self._result(task, fresh)
            self.keys.settle(reservation, result.cost_micros)
            reservation = None
            error = error_of(result)
            if error is not None:
                return _error(protocol, error, headers_of(result))
            answer = answer_of(result, bool(task.client_tools))
            return web.Response(body=orjson.dumps(protocol.response(call.model, result, answer)),
                                content_type="application/json", headers=headers_of(result))
        except GatewayError as error:
            self.keys.settle(reservation, 0)
            return _error(protocol, error)

    def _task_for(self, request: web.Request, call: ChatCall, route: Route, tenant: str,
                  raw: bytes) -> tuple[TaskRequest, bool]:
        key = request.headers.get("idempotency-key")
        if not key:
            return to_task(call, route, task_id=new_task_id(), tenant=tenant, reply_to=self.replies.topic,
                           tenant_settable=self.keys.open), True
        claim = self.idempotency.claim(tenant, key, hashlib.sha256(raw).hexdigest(), now_ms())
        try:
            task = to_task(call, route, task_id=claim.task_id, tenant=tenant, reply_to=self.replies.topic,
                           created_ms=claim.created_ms, tenant_settable=self.keys.open)
        except GatewayError:
            if claim.fresh:
                self.idempotency.release(claim.task_id)
            raise
        return task, claim.fresh

    async def _send(self, task: TaskRequest) -> None:
        assert self._producer is not None
        await (await self._producer.send(self.settings.topics.tasks, codec().encode(task), key=task.task_id.encode()))
        self.sent += 1

    async def _result(self, task: TaskRequest, fresh: bool) -> TaskResult:
        """The task's result; a retried task not waited on here is looked up by id first."""
        if not fresh and (found := self.replies.known(task.task_id) or await self.replies.lookup(task.task_id)):
            return found
        try:
            return await self.replies.wait(task.task_id, task.timeout_ms / 1000 + self.config.grace_s)
        except TimeoutError:
            found = await self.replies.lookup(task.task_id)  # a reply lost to a worker's crash: the log has it
            if found is not None:
                return found
            raise GatewayError(504, "timeout", f"no result for task {task.task_id} within its deadline; "
                               f"GET /v1/swarm/tasks/{task.task_id} may have it later", task_id=task.task_id,
                               retry=False) from None

    async def _stream(self, request: web.Request, protocol: Protocol, call: ChatCall, task: TaskRequest,
                      reservation: Any, fresh: bool) -> web.StreamResponse:
        """Headers and the protocol's opening event at once, keep-alives while the task runs,
        then the answer (or an error event) and the end of the stream."""
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache",
                                               "x-swarm-task-id": task.task_id})
        await response.prepare(request)
        stream = protocol.stream(call.model, task.task_id, call.include_usage)
        await response.write(stream.start())
        waiter = asyncio.ensure_future(self._result(task, fresh))
        try:
            while True:
                done, _ = await asyncio.wait([waiter], timeout=self.config.keepalive_s)
                if done:
                    break
                await response.write(stream.keep_alive)
            try:
                result = waiter.result()
            except GatewayError as error:
                self.keys.settle(reservation, 0)
                chunks = stream.error(error)
            else:
                self.keys.settle(reservation, result.cost_micros)
                error = error_of(result)
                chunks = stream.error(error) if error else stream.answer(result, answer_of(result, bool(task.client_tools)))
            for chunk in chunks:
                await response.write(chunk)
            await response.write_eof()
        finally:
            if not waiter.done():  # the client went away: the task still finishes, fetchable by id
                waiter.cancel()
                self.keys.settle(reservation, 0)
        return response


def _error(protocol: Protocol, error: GatewayError, extra: dict[str, str] | None = None) -> web.Response:
    headers = dict(extra or {})
    if error.task_id:
        headers["x-swarm-task-id"] = error.task_id
    if error.retry is not None:
        headers["x-should-retry"] = "true" if error.retry else "false"
    if error.status >= 500 or error.status == 429:
        log.info("request refused: %s", error)  # our own words and ids only (errors.py)
    return web.Response(status=error.status, body=orjson.dumps(protocol.error_body(error)),
                        content_type="application/json", headers=headers)


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, gateway: GatewaySettings, broker_url: str | None = None, *,
                          shutdown_timeout_s: float = 60.0) -> AsyncIterator[tuple[Gateway, str]]:
    """A started gateway serving on ``gateway.host:port`` (0: a free port); yields it and its base URL.
    On exit, requests in flight get ``shutdown_timeout_s`` to finish (0: cut off, as a crash would)."""
    gw = Gateway(settings, gateway, broker_url)
    await gw.start()
    runner = web.AppRunner(gw.app(), access_log=None, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, gateway.host, gateway.port, backlog=LISTEN_BACKLOG)
    try:
        await site.start()
        port = runner.addresses[0][1]
        yield gw, f"http://{gateway.host}:{port}"
    finally:
        await runner.cleanup()
        await gw.stop()


async def serve(settings: Settings, gateway: GatewaySettings, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (or forever)."""
    async with running_gateway(settings, gateway) as (gw, url):
        log.info("gateway %s serving %s (replies on %s)", gateway.instance, url, gw.replies.topic)
        print(f"swarmstream gateway {gateway.instance} on {url}/v1 (replies: {gw.replies.topic})", flush=True)
        await (stop or asyncio.Event()).wait()


def main() -> None:
    """``python -m swarmstream.streams.gateway.app``: the gateway from ``SWARM_*`` and ``SWARM_GATEWAY_*``."""
    logging.basicConfig(level=logging.INFO)
    settings = Settings()
    if not settings.broker:
        raise SystemExit("SWARM_BROKER is required: the gateway sends tasks to a running pipeline")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, GatewaySettings()))


if __name__ == "__main__":
    main()
