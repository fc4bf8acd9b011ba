"""`SimFleet`: fake models served over real HTTP on loopback, in both the OpenAI and the
Anthropic protocol, with configurable latency, accuracy and failures.

    fleet = SimFleet({"sim-fast": SimProfile(accuracy=0.9, latency_median_ms=0)}, seed=1)
    base_url = await fleet.start()        # "http://127.0.0.1:<port>/v1"
    ...  POST {base_url}/chat/completions  or  POST {base_url}/messages
    await fleet.stop()

Routes:
    POST /v1/chat/completions   OpenAI chat completions (models with protocol "openai")
    POST /v1/messages           Anthropic messages (models with protocol "anthropic")
    GET  /v1/models             OpenAI-style model list
    GET  /_sim/stats            `counters` as JSON
    POST /_sim/reset            zero the counters, rewind scripts and RNG streams

The request's `model` picks the profile; an unknown model, or a model asked over the
other protocol, gets 404 with that protocol's error body. What a call does, in order:
the next script step, or else a failure drawn from the profile's rates (behaviour.py);
a latency wait (skipped for failures a gateway answers before any model runs); then the
reply. Answers come from `prompts.understand(prompt)` (the demo's prompt shapes, then the
arithmetic and label questions a person types), correct with the profile's accuracy for
the prompt's category (`behaviour.accuracy_for`), as a pure function of (seed, model, prompt).
Models whose profile states `correlated` targets err alike instead, as real models do
(`correlated.py`; the helm-mmlu preset), and a call at temperature > 0 is a fresh sample.

Cost: about 0.2 ms of CPU per call for client and server together, ~5,000 calls/s on
one core (`test_serving_is_light` prints it); bodies are serialised with orjson and the
static error bodies are built once.
"""

import asyncio
import itertools
import random
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from . import correlated
from .behaviour import (
    UNSOLVED_TEXT,
    UNSURE_TEXT,
    AnswerDecision,
    ModelState,
    accuracy_for,
    answer_text,
    decide_answer,
    draw_latency_s,
    estimate_tokens,
)
from .embeddings import embeddings_body, read_input
from .judging import fused_task, verdict
from .profile import FAILURE_CLASSES, SimProfile, check_profile, check_profiles
from .prompts import understand
from .protocols import (
    JSON_HEADERS,
    Protocol,
    Reply,
    RequestError,
    anthropic_message,
    anthropic_tool_use,
    failure_reply,
    model_not_found_reply,
    openai_completion,
    openai_logprobs,
    openai_tool_calls,
    read_messages,
    request_error_reply,
)
from .taskset import Truth
from .tooluse import TOOL_BEHAVIOURS, plan, read_tool_conversation

# Failures a provider's gateway returns before a model runs, so they skip the latency wait
# (a 429 that took as long as an answer would make rate-limit backoff look cheap).
FAST_FAILURES = frozenset({"rate_limited", "auth", "bad_request", "context_length"})
# Failures answered with 200 and a (useless) completion rather than an error status.
SOFT_FAILURES = frozenset({"content_policy", "invalid_output"})

OUTCOMES: tuple[str, ...] = ("correct", "wrong", "unsolved", *FAILURE_CLASSES)

# Per-message framing tokens, as OpenAI's cookbook counts them ("every message follows
# <|start|>{role/name}\n{content}<|end|>\n"), so usage grows with the number of turns.
_TOKENS_PER_MESSAGE = 4


class SimFleet:
    """Simulated models behind one aiohttp server. Not thread-safe: use it from one event loop."""

    def __init__(
        self,
        profiles: Mapping[str, SimProfile],
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout_sleep_s: float = 30.0,
    ) -> None:
        check_profiles(profiles)
        self.seed = seed
        self.host = host
        self.port = port
        # how long a `timeout` call holds its request: far past any sane client timeout
        self.timeout_sleep_s = timeout_sleep_s
        self._models: dict[str, ModelState] = {
            model: ModelState(profile, seed, model) for model, profile in profiles.items()
        }
        # models with `correlated` targets err alike (correlated.py); the rest independently
        self._correlated = correlated.fit_profiles(profiles)
        self._sample_rng = random.Random(f"sim-samples:{seed}")
        self._counters: dict[str, dict[str, int]] = {model: self._zero_counts() for model in profiles}
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self._sleepers: set[asyncio.Future[None]] = set()
        self.base_url: str | None = None
        self._tool_behaviours: dict[str, str] = {}
        self.tool_turns: dict[str, int] = {}
        """model -> replies given to requests that offered tools and used them (calls or a final answer)."""

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> str:
        """Bind and serve; returns the base URL, e.g. "http://127.0.0.1:41234/v1"."""
        if self._runner is not None:
            raise RuntimeError("SimFleet.start: already started")
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_post("/v1/embeddings", self._embeddings)  # simulated/embeddings.py
        app.router.add_get("/_sim/stats", self._stats)
        app.router.add_post("/_sim/reset", self._reset)
        # handler_cancellation: a client that gives up (its timeout) cancels our sleep too,
        # so held `timeout` calls do not pile up; shutdown_timeout: stop() is not held up
        # by handlers, which wake at once anyway (see _sleep).
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self._stopping = False
        host, port = self._runner.addresses[0][:2]
        self.port = port
        self.base_url = f"http://{host}:{port}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; requests held in a latency or timeout wait are woken and closed at once."""
        self._stopping = True
        for sleeper in list(self._sleepers):
            if not sleeper.done():
                sleeper.set_result(None)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> "SimFleet":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- control ----------------------------------------------------------------------------

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self._models)

    def profile(self, model: str) -> SimProfile:
        return self._models[model].profile

    def set_profile(self, model: str, profile: SimProfile) -> None:
        """Replace (or add) a model's profile while serving; its script starts from the top
        and its RNG streams restart, its counters are kept."""
        check_profile(model, profile)
        self._models[model] = ModelState(profile, self.seed, model)
        self._correlated = correlated.fit_profiles({m: state.profile for m, state in self._models.items()})
        self._counters.setdefault(model, self._zero_counts())

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        """model -> {"calls": n, outcome: n} (a copy); outcomes are OUTCOMES."""
        return {model: dict(counts) for model, counts in self._counters.items()}

    def reset(self) -> None:
        """Zero the counters and rewind every model's script and RNG streams."""
        for model, state in self._models.items():
            state.reset()
            self._counters[model] = self._zero_counts()
        self._sample_rng = random.Random(f"sim-samples:{self.seed}")

    @staticmethod
    def _zero_counts() -> dict[str, int]:
        return dict.fromkeys(("calls", *OUTCOMES), 0)

    # --- routes -----------------------------------------------------------------------------

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "openai")

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "anthropic")

    async def _list_models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "swarmstream-sim"} for m in self._models]
        return _response((200, JSON_HEADERS, orjson.dumps({"object": "list", "data": data})))

    async def _embeddings(self, request: web.Request) -> web.Response:
        """OpenAI's ``/v1/embeddings`` for any model name: vectors from ``embeddings.py``; each request
        counts one call of ``embeddings`` in the stats."""
        try:
            req = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _response(request_error_reply("openai", f"the request body is not valid JSON: {exc}"))
        texts = read_input(req)
        if texts is None:
            return _response(request_error_reply("openai", "input: expected a string or a list of strings"))
        self._counters.setdefault("embeddings", self._zero_counts())["calls"] += 1
        return _response((200, JSON_HEADERS, embeddings_body(str(req.get("model", "")), texts)))

    async def _stats(self, request: web.Request) -> web.Response:
        return _response((200, JSON_HEADERS, orjson.dumps(self._counters)))

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _response((200, JSON_HEADERS, b'{"ok":true}'))

    # --- one call ---------------------------------------------------------------------------

    async def _serve(self, request: web.Request, protocol: Protocol) -> web.StreamResponse:
        try:
            req = orjson.loads(await request.read())
            if not isinstance(req, dict):
                raise RequestError("the request body must be a JSON object")
        except (orjson.JSONDecodeError, RequestError) as exc:
            message = str(exc) if isinstance(exc, RequestError) else f"the request body is not valid JSON: {exc}"
            return _response(request_error_reply(protocol, message))
        model = req.get("model")
        if not isinstance(model, str) or (state := self._models.get(model)) is None:
            known = ", ".join(self._models)
            return _response(model_not_found_reply(protocol, model, f" (simulated models: {known})"))
        if state.profile.protocol != protocol:
            other = "/v1/chat/completions" if state.profile.protocol == "openai" else "/v1/messages"
            hint = f" (simulated model {model!r} speaks the {state.profile.protocol} protocol: POST {other})"
            return _response(model_not_found_reply(protocol, model, hint))
        if req.get("stream"):
            return _response(request_error_reply(protocol, "stream: streaming is not supported by the simulator"))
        try:
            prompt, chars = read_messages(req, protocol)
        except RequestError as exc:
            return _response(request_error_reply(protocol, str(exc)))

        counts = self._counters[model]
        counts["calls"] += 1
        step = state.next_step()
        input_tokens = estimate_tokens(chars) + _TOKENS_PER_MESSAGE * len(req["messages"])

        if step == "timeout":
            counts["timeout"] += 1
            await self._sleep(self.timeout_sleep_s)
            return _response(failure_reply(protocol, "timeout", input_tokens))
        if step not in FAST_FAILURES:
            await self._sleep(draw_latency_s(state.latency_rng, state.profile))
        if step == "network":
            counts["network"] += 1
            if request.transport is not None:
                request.transport.abort()  # the client sees a dropped connection, no response
            return web.Response(status=502)
        if step in FAILURE_CLASSES and step not in SOFT_FAILURES:
            counts[step] += 1
            return _response(failure_reply(protocol, step, input_tokens))
        if req.get("tools") and step == "ok":
            reply = self._tool_turn(protocol, req, model, input_tokens)
            if reply is not None:
                return _response(reply)
        return _response(self._completion(protocol, req, model, step, prompt, input_tokens))

    def set_tool_behaviour(self, model: str, behaviour: str) -> None:
        """How ``model`` misbehaves with tools from now on (``tooluse.TOOL_BEHAVIOURS``)."""
        if behaviour not in TOOL_BEHAVIOURS:
            raise ValueError(f"tool behaviour {behaviour!r}: expected one of {', '.join(TOOL_BEHAVIOURS)}")
        self._tool_behaviours[model] = behaviour

    def _tool_turn(self, protocol: Protocol, req: Mapping[str, Any], model: str, input_tokens: int) -> Reply | None:
        """A reply of a model offered tools (``tooluse.plan``); None to answer as without tools."""
        prompt, offered, history = read_tool_conversation(dict(req), protocol)
        planned = plan(prompt, offered, history, self._tool_behaviours.get(model, "correct"), model)
        if planned is None:
            return None
        self.tool_turns[model] = self.tool_turns.get(model, 0) + 1
        n = next(self._ids)
        if planned.answer is not None:
            text = planned.answer
            output_tokens = estimate_tokens(len(text))
            if protocol == "openai":
                body = openai_completion(completion_id=f"chatcmpl-sim{self._id_prefix}{n:010d}", model=model,
                                         content=text, finish_reason="stop", prompt_tokens=input_tokens,
                                         completion_tokens=output_tokens)
            else:
                body = anthropic_message(message_id=f"msg_sim{self._id_prefix}{n:010d}", model=model, content=text,
                                         stop_reason="end_turn", input_tokens=input_tokens, output_tokens=output_tokens)
            return 200, JSON_HEADERS, body
        calls = [(f"call_sim{self._id_prefix}{n:010d}_{i}", c.name, c.arguments) for i, c in enumerate(planned.calls)]
        output_tokens = estimate_tokens(sum(len(c.arguments) + len(c.name) for c in planned.calls))
        if protocol == "openai":
            body = openai_tool_calls(completion_id=f"chatcmpl-sim{self._id_prefix}{n:010d}", model=model, calls=calls,
                                     prompt_tokens=input_tokens, completion_tokens=output_tokens)
        else:
            body = anthropic_tool_use(message_id=f"msg_sim{self._id_prefix}{n:010d}", model=model, calls=calls,
                                      input_tokens=input_tokens, output_tokens=output_tokens)
        return 200, JSON_HEADERS, body

    def _completion(
        self, protocol: Protocol, req: Mapping[str, Any], model: str, step: str, prompt: str, input_tokens: int
    ) -> Reply:
        """A 200 reply: the model's answer, a refusal (content_policy) or an unusable text (invalid_output)."""
        counts = self._counters[model]
        logprob = -1e-3
        alternatives: tuple[str, ...] = ()
        if step == "content_policy":
            counts[step] += 1
            text, answer, finish = "", "", "content_filter" if protocol == "openai" else "refusal"
        elif step == "invalid_output":
            counts[step] += 1
            text, answer, finish = UNSURE_TEXT, UNSURE_TEXT, "stop"
        elif (judged := verdict(prompt, lambda task, truth: self._decide(req, model, task, truth).answer)):
            text, answer, finish = judged, judged, "stop"  # a judge's prompt: its verdict (simulated/judging.py)
        else:
            finish = "stop"
            prompt = fused_task(prompt) or prompt  # a fuser answers the task it is shown, as it would alone
            truth = understand(prompt)
            if truth is None:
                counts["unsolved"] += 1
                text = answer = UNSOLVED_TEXT
            else:
                decision = self._decide(req, model, prompt, truth)
                counts["correct" if decision.correct else "wrong"] += 1
                answer, logprob = decision.answer, decision.confidence_logprob
                text = answer_text(truth.answer_type, answer)
                alternatives = tuple(a for a in (truth.answer, *truth.wrong) if a != answer)
        output_tokens = estimate_tokens(len(text)) if text else 0
        n = next(self._ids)
        if protocol == "openai":
            logprobs = None
            if req.get("logprobs") is True and text:
                top_n = req.get("top_logprobs")
                prefix = text[: len(text) - len(answer)] if text.endswith(answer) else ""
                logprobs = openai_logprobs(
                    prefix, text[len(prefix) :], logprob, alternatives, top_n if isinstance(top_n, int) else 0
                )
            body = openai_completion(
                completion_id=f"chatcmpl-sim{self._id_prefix}{n:010d}",
                model=model,
                content=text,
                finish_reason=finish,
                prompt_tokens=input_tokens,
                completion_tokens=output_tokens,
                logprobs=logprobs,
            )
            headers = {"Content-Type": "application/json", "x-request-id": f"req_sim{self._id_prefix}{n:010d}"}
        else:
            body = anthropic_message(
                message_id=f"msg_sim{self._id_prefix}{n:010d}",
                model=model,
                content=None if step == "content_policy" else text,
                stop_reason="end_turn" if finish == "stop" else finish,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
            headers = {"Content-Type": "application/json", "request-id": f"req_sim{self._id_prefix}{n:010d}"}
        return 200, headers, body

    def _decide(self, req: Mapping[str, Any], model: str, prompt: str, truth: Truth) -> AnswerDecision:
        """The model's answer to ``prompt``: correlated with the other models' (correlated.py) or not."""
        accuracy = accuracy_for(self._models[model].profile, truth.category)
        if self._correlated is not None and model in self._correlated:
            temperature, sample = self._sampling(req)
            return self._correlated.decide(self.seed, model, prompt, truth, accuracy, sample=sample,
                                           temperature=temperature)
        return decide_answer(self.seed, model, prompt, truth, accuracy)

    def _sampling(self, req: Mapping[str, Any]) -> tuple[float, int]:
        """(temperature, sample index) of a request to a correlated model: at temperature > 0 each
        call is a fresh sample (index from the request's ``seed`` when it has one, so a seeded call
        repeats, else drawn), correlated with the greedy answer through the prompt (correlated.py)."""
        temperature = req.get("temperature")
        if not isinstance(temperature, int | float) or temperature <= 0:
            return 0.0, 0
        seed = req.get("seed")
        sample = seed + 1 if isinstance(seed, int) and seed >= 0 else self._sample_rng.randrange(1, 2**62)
        return float(temperature), sample

    async def _sleep(self, seconds: float) -> None:
        """Sleep that stop() cuts short; cheaper than wait_for on an Event (one timer, one future)."""
        if seconds <= 0 or self._stopping:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiter)
        self._sleepers.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._sleepers.discard(waiter)


def _wake(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_result(None)


def _response(reply: Reply) -> web.Response:
    status, headers, body = reply
    return web.Response(status=status, headers=headers, body=body)


async def serve_forever(
    profiles: Mapping[str, SimProfile],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    seed: int = 0,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve a fleet until ``stop`` is set or the call is cancelled (for the CLI); the port is
    closed when this returns. ``port`` 0 picks a free one. Prints nothing: ``on_ready`` gets
    the base URL, with the real port."""
    fleet = SimFleet(profiles, seed=seed, host=host, port=port)
    base_url = await fleet.start()
    try:
        if on_ready is not None:
            on_ready(base_url)
        await (stop or asyncio.Event()).wait()
    finally:
        await fleet.stop()
