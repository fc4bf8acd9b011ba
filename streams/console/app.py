"""The console's web app: server-rendered pages (Jinja2, autoescaped: a model's answer is
text, never markup), a little plain JavaScript, live updates by server-sent events.

Pages read the folds in ``state.py``; decisions are written as events (``follower.py``) and
the page that made one waits until its own read of the topic has folded it, so the queue it
shows next already lacks the item, as every other reviewer's will.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import orjson
from aiohttp import web
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.models.catalog import Catalog, load_catalog
from swarmstream.agents.selection.budget import BudgetLimits
from swarmstream.agents.tools.redaction import redact_text
from swarmstream.agents.tools.registry import load_tools
from swarmstream.schemas.models import Approval, now_ms
from swarmstream.streams.app.security import aiokafka_security
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.app.topology import budget_limits, chains_for
from swarmstream.streams.console.access import COOKIE, Access, Identity
from swarmstream.streams.console.follower import Follower
from swarmstream.streams.console.queues import DecisionError, candidates, decide
from swarmstream.streams.console.replay_report import ReplayReports
from swarmstream.streams.console.settings import ConsoleSettings
from swarmstream.streams.console.state import ConsoleState, ConsoleTopics

log = logging.getLogger(__name__)

OWN_DECISION_WAIT_S = 5.0
"""How long a decision's request waits for the console's own read to fold it before the next
page is drawn: a local broker answers in milliseconds; past this the page says it is on its way."""

QUEUE_SHOWN = 50
"""Review items drawn on one page (oldest first; the count says how many more wait): a reviewer
works down from the top, and 50 items keep the page near 100 KB."""

IDENTITY = web.RequestKey("identity", Identity)


def console_topics(settings: Settings, models: list[str]) -> ConsoleTopics:
    names = settings.topics
    decisions = names.review_decisions
    return ConsoleTopics(
        calls=names.calls, quality=names.quality, review=names.review, decisions=decisions, audit=names.audit,
        approvals=names.approvals, feedback=names.feedback,
        trail=(names.tasks, *(names.model(m) for m in models), names.delays, names.selections, names.responses,
               names.failures, names.results, names.review, decisions, names.feedback, names.tool_calls,
               names.tool_results, names.audit, names.approvals, names.dead_letters),
    )


@dataclass
class Console:
    settings: Settings
    console: ConsoleSettings
    state: ConsoleState
    follower: Follower
    access: Access
    reports: ReplayReports
    secrets: list[str]  # removed from every page, whatever put them there
    templates: jinja2.Environment

    def budgets(self) -> dict[str, BudgetLimits]:
        tenants = {*self.settings.budgets} - {"*"}
        return {t: budget_limits(self.settings, t) for t in tenants | self.state.fleet.tenants()}


def _secrets_of(settings: Settings, console: ConsoleSettings, secret: bytes, catalog: Catalog) -> list[str]:
    """Every secret this process could know: the console's tokens and key, the broker's password,
    the providers' keys (the console calls no model, but a caller may paste one into a prompt)."""
    found = [user.token.get_secret_value() for user in console.users.values()]
    found += [os.environ.get(m.api_key_env, "") for m in catalog.models.values() if m.api_key_env]
    found.append(secret.hex())
    if settings.broker_sasl_password is not None:
        found.append(settings.broker_sasl_password.get_secret_value())
    if console.secret is not None:
        found.append(console.secret.get_secret_value())
    return [s for s in found if s]


def build_console(settings: Settings, console: ConsoleSettings) -> Console:
    catalog = load_catalog(settings.models, sim_url=settings.sim_url or "http://127.0.0.1:1/v1")
    board = CircuitBoard(chains_for(settings, catalog).circuit_for, now_ms)
    approval_timeout_ms = load_tools(settings.tools).limits.approval_timeout_ms
    state = ConsoleState(console_topics(settings, list(catalog.models)), board, window_s=console.window_s,
                         approval_timeout_ms=approval_timeout_ms)
    follower = Follower(state, broker_url=settings.broker, group=settings.app_id, partitions=settings.partitions,
                        security=aiokafka_security(settings))
    secret = console.secret.get_secret_value().encode() if console.secret else os.urandom(32)
    secrets = _secrets_of(settings, console, secret, catalog)
    return Console(settings, console, state, follower, Access(console, secret), ReplayReports(console.recordings),
                   secrets, templates(secrets))


# --- rendering ---------------------------------------------------------------------------------


SHORTEST_SECRET = 11
"""No value shorter than this holds a key-shaped string (``sk-`` and 8 more is the shortest
pattern of ``agents/tools/redaction.py``) or one of the console's own secrets (16 and more)."""


def templates(secrets: list[str]) -> jinja2.Environment:
    """The pages' templates. Every value a page shows passes ``finalize``, the last net: nothing
    shaped like a key, and none of the console's own secrets, is ever rendered (cheaper than
    searching the whole page: a value at a time, only values long enough to hold one)."""

    def finalize(value: Any) -> Any:
        if isinstance(value, str) and len(value) >= SHORTEST_SECRET:
            return redact_text(value, secrets)
        return value

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("swarmstream.streams.console", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, finalize=finalize,
    )
    env.filters["ms"] = lambda v: "-" if v is None else f"{v:,.0f}"
    env.filters["usd"] = lambda micros: "-" if micros is None else f"${micros / 1e6:,.6f}"
    env.filters["pct"] = lambda v: "-" if v is None else f"{v:.0%}"
    env.filters["when"] = lambda at_ms: "-" if not at_ms else time.strftime("%Y-%m-%d %H:%M:%S",
                                                                            time.gmtime(at_ms / 1000)) + " UTC"
    env.filters["num"] = lambda v, digits=3: "-" if v is None else f"{v:.{digits}f}"
    return env


def page(console: Console, request: web.Request, template: str, *, status: int = 200, **values: Any) -> web.Response:
    identity = request[IDENTITY]
    html = console.templates.get_template(template).render(
        me=identity, csrf=console.access.csrf_token(identity), path=request.path,
        review_count=len(console.state.review), refresh_s=console.console.refresh_s, **values)
    return web.Response(text=html, content_type="text/html", status=status, headers=NO_STORE)


NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                       "script-src 'self'; frame-ancestors 'none'; form-action 'self'"}


# --- access ------------------------------------------------------------------------------------

OPEN_PATHS = ("/login", "/static/", "/healthz")


def access_middleware(console: Console) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def check(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        if request.path.startswith(OPEN_PATHS):
            return await handler(request)
        identity = console.access.identify(request.headers, request.cookies, now_ms())
        if identity is None:
            if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
                raise web.HTTPSeeOther("/login")
            raise web.HTTPUnauthorized(text="log in: a token (Authorization: Bearer) or the console's login page")
        request[IDENTITY] = identity
        if request.method not in ("GET", "HEAD"):
            offered = request.headers.get("X-CSRF-Token")
            if offered is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                offered = (await request.post()).get("csrf")  # type: ignore[assignment]
            if not console.access.csrf_ok(identity, offered if isinstance(offered, str) else None):
                raise web.HTTPForbidden(text="refused: this request lacks the page's CSRF token (reload the page)")
        return await handler(request)

    return check


def needs_reviewer(request: web.Request) -> Identity:
    identity = request[IDENTITY]
    if not identity.may_decide:
        raise web.HTTPForbidden(text=f"{identity.name} is a viewer: deciding needs the reviewer role")
    return identity


# --- handlers ----------------------------------------------------------------------------------


def routes(console: Console) -> web.RouteTableDef:
    r = web.RouteTableDef()
    state = console.state

    @r.get("/healthz")
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"caught_up": console.follower.caught_up(), "records": state.records})

    @r.get("/login")
    async def login_form(request: web.Request) -> web.Response:
        html = console.templates.get_template("login.html").render(error="", me=None, path="/login")
        return web.Response(text=html, content_type="text/html", headers=NO_STORE)

    @r.post("/login")
    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        user = console.access.by_token(str(form.get("token", "")))
        if user is None:
            html = console.templates.get_template("login.html").render(error="unknown token", me=None, path="/login")
            return web.Response(text=html, content_type="text/html", status=403, headers=NO_STORE)
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, console.access.session_cookie(user[0], user[1], now_ms()), httponly=True,
                            samesite="Strict", max_age=console.console.session_s, path="/",
                            secure=request.secure)
        raise response

    @r.post("/logout")
    async def logout(request: web.Request) -> web.Response:
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response

    @r.get("/")
    async def index(request: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/review")

    @r.get("/review")
    async def review(request: web.Request) -> web.Response:
        items = state.review.items()
        shown = [(item, candidates(item)) for item in items[:QUEUE_SHOWN]]
        decided = state.review.decision(request.query.get("decided", ""))
        notice = "" if decided is None else (f"Task {decided.task_id} was already decided by "
                                             f"{decided.reviewer or 'someone'}: {decided.action} {decided.answer!r}.")
        return page(console, request, "review.html", items=shown, total=len(items),
                    version=state.review.version, notice=notice)

    @r.post("/review/{task_id}")
    async def review_decide(request: web.Request) -> web.Response:
        identity = needs_reviewer(request)
        task_id = request.match_info["task_id"]
        form = await request.post()
        item = state.review.get(task_id)
        if item is None:  # decided meanwhile (by another reviewer, or this one's second click)
            raise web.HTTPSeeOther(f"/review?decided={quote(task_id)}")
        try:
            decision, feedback = decide(item, action=str(form.get("action", "")), reviewer=identity.name,
                                        now_ms=now_ms(), model_id=str(form.get("model", "")) or None,
                                        written=str(form.get("answer", "")), note=str(form.get("note", ""))[:500])
        except DecisionError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        await console.follower.publish(state.topics.decisions, task_id, decision)
        await console.follower.publish(state.topics.feedback, task_id, feedback)
        await _until(lambda: state.review.get(task_id) is None, OWN_DECISION_WAIT_S)
        raise web.HTTPSeeOther("/review")

    def waiting() -> list[Any]:
        return state.approvals.waiting(now_ms(), state.approval_expires_ms)

    @r.get("/approvals")
    async def approvals(request: web.Request) -> web.Response:
        return page(console, request, "approvals.html", calls=waiting(), version=state.approvals.version)

    @r.post("/approvals")
    async def approvals_decide(request: web.Request) -> web.Response:
        identity = needs_reviewer(request)
        form = await request.post()
        key = str(form.get("key", ""))
        call = state.approvals.get(key)
        if call is None:
            raise web.HTTPSeeOther("/approvals")
        approved = form.get("action") == "approve"
        approval = Approval(task_id=call.task_id, tool=call.tool, digest=call.digest, approved=approved,
                            approver=identity.name, reason=str(form.get("reason", ""))[:500], at_ms=now_ms())
        await console.follower.publish(state.topics.approvals, call.task_id, approval)
        await _until(lambda: state.approvals.get(key) is None, OWN_DECISION_WAIT_S)
        raise web.HTTPSeeOther("/approvals")

    @r.get("/fleet")
    async def fleet(request: web.Request) -> web.Response:
        return page(console, request, "fleet.html", **fleet_values(console))

    @r.get("/trail")
    async def trail(request: web.Request) -> web.Response:
        task_id = request.query.get("task", "").strip()
        events = state.trail.events(task_id, console.secrets) if task_id else []
        return page(console, request, "trail.html", task_id=task_id, events=events,
                    known=bool(task_id) and task_id in state.trail)

    @r.get("/replay")
    async def replay(request: web.Request) -> web.Response:
        name = request.query.get("file", "")
        files = console.reports.files()
        report = error = None
        if name:
            if name not in files:
                error = f"no recording named {name!r} in the recordings folder"
            else:
                try:
                    report = await console.reports.report(name)
                except ValueError as exc:  # RecordingError, LabelError, ReplayError: the file's fault
                    error = str(exc)
        diagram = None if report is None else base64.b64encode(report.diagram_png).decode()
        return page(console, request, "replay.html", files=files, chosen=name, report=report, error=error,
                    diagram=diagram)

    shared: list[Any] = [0.0, ""]  # (when, what): every open page gets the same update

    def live_update() -> str:
        """What live pages get; computed once per half refresh for all of them (a fleet of 10,000
        tasks' calls takes ~70 ms to fold into rows, and each open tab asks every second)."""
        if time.monotonic() - shared[0] >= console.console.refresh_s / 2:
            payload = {
                "review": [i.task.task_id for i in state.review.items()[:QUEUE_SHOWN]],
                "review_total": len(state.review),
                "approvals": [{"key": s.call.key, "time_left_s": round(s.time_left_ms / 1000)} for s in waiting()],
                "fleet": fleet_json(console, now_ms()),
            }
            shared[:] = [time.monotonic(), redact_text(orjson.dumps(payload).decode(), console.secrets)]
        return str(shared[1])

    @r.get("/events")
    async def events(request: web.Request) -> web.StreamResponse:
        """Server-sent events: every ``refresh_s`` the fleet numbers and what the queues hold."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        while True:
            data = live_update()
            try:
                await response.write(f"data: {data}\n\n".encode())
            except (ConnectionResetError, RuntimeError):
                break
            await asyncio.sleep(console.console.refresh_s)
        return response

    return r


async def _until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def fleet_values(console: Console) -> dict[str, Any]:
    now = now_ms()
    return {"rows": console.state.fleet.rows(now), "spend": console.state.fleet.spend(now, console.budgets()),
            "lag": console.follower.lag, "lag_error": console.follower.lag_error, "now": now,
            "window_s": console.console.window_s}


def fleet_json(console: Console, now: int) -> dict[str, Any]:
    rows = [{"model": f.model, "rps": round(f.requests_per_s, 2), "calls": f.calls,
             "p50": f.latency_p50_ms, "p95": f.latency_p95_ms, "error_rate": round(f.error_rate, 4),
             "failures": f.failures, "breaker": f.breaker,
             "usd_per_min": round(f.cost_micros_per_min / 1e6, 6)} for f in console.state.fleet.rows(now)]
    spend = [{"tenant": s.tenant, "window": s.window, "spent_usd": s.spent_micros / 1e6,
              "limit_usd": None if s.limit_micros is None else s.limit_micros / 1e6,
              "usd_per_min": round(s.rate_micros_per_min / 1e6, 6),
              "runs_out_in_s": None if s.runs_out_ms is None else max(0, (s.runs_out_ms - now) // 1000)}
             for s in console.state.fleet.spend(now, console.budgets())]
    return {"models": rows, "spend": spend, "lag": console.follower.lag}


# --- the app -----------------------------------------------------------------------------------


def make_app(console: Console) -> web.Application:
    app = web.Application(middlewares=[access_middleware(console)], client_max_size=64 * 1024)
    app.add_routes(routes(console))
    static = resources.files("swarmstream.streams.console") / "static"
    app.router.add_static("/static/", Path(str(static)), show_index=False)

    async def on_startup(_: web.Application) -> None:
        await console.follower.start()

    async def on_cleanup(_: web.Application) -> None:
        await console.follower.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


@contextlib.asynccontextmanager
async def serving(settings: Settings, console_settings: ConsoleSettings):  # type: ignore[no-untyped-def]
    """The console running on its host and port (0: a free one); yields (Console, base URL)."""
    console = build_console(settings, console_settings)
    runner = web.AppRunner(make_app(console), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, console_settings.host, console_settings.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield console, f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def load_settings() -> tuple[Settings, ConsoleSettings] | str:
    """The settings from the environment, or what is wrong with them (for the person starting it)."""
    from pydantic import ValidationError

    try:
        settings, console_settings = Settings(), ConsoleSettings()
    except ValidationError as exc:
        return str(exc)
    if not settings.broker:
        return "set SWARM_BROKER=kafka://host:port (the cluster the workers use) and SWARM_TOPIC_PREFIX"
    return settings, console_settings


async def run_console(settings: Settings, console_settings: ConsoleSettings,
                      on_ready: Callable[[str], None] | None = None) -> int:
    """Serve until cancelled (``swarmstream console`` cancels it on SIGTERM/SIGINT)."""
    async with serving(settings, console_settings) as (_, url):
        if on_ready is not None:
            on_ready(url)
        await asyncio.Event().wait()
    return 0


def main() -> int:
    """``python -m swarmstream.streams.console``: the console's own entry point."""
    loaded = load_settings()
    if isinstance(loaded, str):
        print(f"swarmstream console: {loaded}", file=sys.stderr)
        return 2

    def ready(url: str) -> None:
        print(f"swarmstream console on {url}; Ctrl-C stops it", file=sys.stderr, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run_console(*loaded, on_ready=ready))
    return 0
