"""``provider: inproc``: a simulated model answered inside the worker's process, with no HTTP.

The benchmarks (``bench/pipeline.py``) need the orchestration's own cost, without a
loopback HTTP round trip per model call on the same two cores. An inproc model
behaves exactly as the simulated fleet (``agents/models/simulated/fleet.py``) would
serve the same catalog entry over its profile's protocol:

- the same step per call: the profile's ``script``, then a failure drawn from its rates
  (``behaviour.ModelState``, RNG streams seeded by (seed, model));
- the same answer: ``prompts.understand`` of the prompt, correct with the profile's accuracy
  for the prompt's category (``behaviour.decide_answer``, a pure function of seed, model
  and prompt), worded by ``behaviour.answer_text``;
- the same tokens: ``estimate_tokens`` of the text plus the fleet's per-message framing,
  the same cost (``cost_micros`` with the catalog's prices) and, for an OpenAI-protocol
  model with the ``logprobs`` capability, the same confidence from the same logprobs;
- the same latency distribution (``behaviour.draw_latency_s``), waited with
  ``asyncio.sleep``; a 0 ms median waits not at all (no event-loop turn);
- the same ProviderError per failure class: error replies are the fleet's bodies
  (``protocols.failure_reply``), read by the protocol's own ``error_from_response``.

The model's name in the decisions is ``spec.upstream``, which is what the fleet sees
as the request's ``model``; the seed is the fleet's default (0). Each worker process
holds its own RNG streams, so with several workers (or a fleet shared by several
workers) only the order of random failures and latencies differs, never the answers.

Differences from the HTTP path, on purpose: a ``timeout`` step or a latency past the
call's budget ends after the budget (the fleet holds the request; the HTTP client
gives up at the same moment), and a ``network`` step raises NETWORK after the latency
wait (the fleet drops the connection then).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from swarmstream.agents.models.catalog import ModelSpec, SimProfile
from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.http import RawResponse
from swarmstream.agents.models.providers import anthropic, openai
from swarmstream.agents.models.providers.base import (
    ChatRequest,
    ChatResponse,
    Clock,
    call_budget_s,
    cost_micros,
    now_ms,
)
from swarmstream.agents.models.simulated.behaviour import (
    UNSOLVED_TEXT,
    UNSURE_TEXT,
    ModelState,
    accuracy_for,
    answer_text,
    decide_answer,
    draw_latency_s,
    estimate_tokens,
)
from swarmstream.agents.models.simulated.fleet import FAST_FAILURES, SOFT_FAILURES
from swarmstream.agents.models.simulated.protocols import (
    anthropic_message,
    failure_reply,
    openai_completion,
    openai_logprobs,
)
from swarmstream.agents.models.simulated.prompts import understand

FLEET_SEED = 0
"""``SimFleet``'s default seed, so an inproc model gives the answers the demo's fleet gives."""

TOKENS_PER_MESSAGE = 4
"""The fleet's per-message framing tokens (``simulated/fleet.py``, after OpenAI's cookbook)."""

SUCCESS_LOGPROB = -1e-3
"""The answer token's log-probability when the model has no belief to report (an unsolved
prompt, an unusable answer): the fleet's value."""


class InprocProvider:
    """One simulated model behind a direct call; ``complete`` raises ProviderError as HTTP providers do."""

    def __init__(self, spec: ModelSpec, *, seed: int = FLEET_SEED, clock: Clock = now_ms) -> None:
        self.spec = spec
        profile = spec.simulated if spec.simulated is not None else SimProfile()
        self._state = ModelState(profile, seed, spec.upstream)
        self._seed = seed
        self._clock = clock
        self._protocol = profile.protocol
        self._logprobs = profile.protocol == "openai" and openai.LOGPROBS_CAPABILITY in spec.capabilities

    def __repr__(self) -> str:
        return f"InprocProvider(model={self.spec.id!r})"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        budget_s = call_budget_s(self.spec, request.deadline_ms, self._clock())
        started_ns = time.perf_counter_ns()
        state = self._state
        step = state.next_step()
        if step == "timeout":
            await asyncio.sleep(budget_s)
            raise _timed_out(budget_s)
        if step not in FAST_FAILURES:
            wait_s = draw_latency_s(state.latency_rng, state.profile)
            if wait_s > budget_s:
                await asyncio.sleep(budget_s)
                raise _timed_out(budget_s)
            if wait_s > 0:
                await asyncio.sleep(wait_s)
        if step == "network":
            raise ProviderError(FailureClass.NETWORK, "the simulated model dropped the connection (inproc)")
        input_tokens = self._input_tokens(request)
        if step != "ok" and step not in SOFT_FAILURES:
            status, headers, body = failure_reply(self._protocol, step, input_tokens)
            raw = RawResponse(status, httpx.Headers(headers), body)
            error_from_response = openai.error_from_response if self._protocol == "openai" else anthropic.error_from_response
            raise error_from_response(raw, self._clock())
        if step == "content_policy":
            raise self._refusal(input_tokens)
        text, confidence = self._answer(request.prompt, step)
        output_tokens = estimate_tokens(len(text)) if text else 0
        latency_ms = (time.perf_counter_ns() - started_ns) // 1_000_000
        return ChatResponse(
            text=text,
            finish_reason="stop",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_micros=cost_micros(self.spec, input_tokens, output_tokens),
            latency_ms=latency_ms,
            upstream_model=self.spec.upstream,
            confidence=confidence,
        )

    def _input_tokens(self, request: ChatRequest) -> int:
        """As the fleet counts them: the text of every message (and Anthropic's system
        prompt) plus the framing of each message; OpenAI carries the system prompt as a message."""
        system = request.system
        chars = len(request.prompt) + (len(system) if system is not None else 0)
        messages = 2 if system is not None and self._protocol == "openai" else 1
        return estimate_tokens(chars) + TOKENS_PER_MESSAGE * messages

    def _answer(self, prompt: str, step: str) -> tuple[str, float | None]:
        """The reply text and, for logprobs models, the confidence the OpenAI provider would read."""
        logprob = SUCCESS_LOGPROB
        alternatives: tuple[str, ...] = ()
        if step == "invalid_output":
            text = answer = UNSURE_TEXT
        else:
            truth = understand(prompt)
            if truth is None:
                text = answer = UNSOLVED_TEXT
            else:
                accuracy = accuracy_for(self._state.profile, truth.category)
                decision = decide_answer(self._seed, self.spec.upstream, prompt, truth, accuracy)
                answer, logprob = decision.answer, decision.confidence_logprob
                text = answer_text(truth.answer_type, answer)
                alternatives = tuple(a for a in (truth.answer, *truth.wrong) if a != answer)
        if not self._logprobs or not text:
            return text, None
        prefix = text[: len(text) - len(answer)] if text.endswith(answer) else ""
        logprobs: dict[str, Any] = openai_logprobs(prefix, text[len(prefix) :], logprob, alternatives, 0)
        return text, openai.confidence_from_logprobs(logprobs)

    def _refusal(self, input_tokens: int) -> ProviderError:
        """The fleet's content-policy reply (200, no text), read by the protocol's own parser."""
        if self._protocol == "openai":
            body = openai_completion(
                completion_id="chatcmpl-inproc",
                model=self.spec.upstream,
                content="",
                finish_reason="content_filter",
                prompt_tokens=input_tokens,
                completion_tokens=0,
            )
            parse = openai.parse_chat_completion
        else:
            body = anthropic_message(
                message_id="msg_inproc",
                model=self.spec.upstream,
                content=None,
                stop_reason="refusal",
                input_tokens=input_tokens,
                output_tokens=0,
            )
            parse = anthropic.parse_message
        try:
            parse(body)
        except ProviderError as exc:
            return exc
        return ProviderError(FailureClass.CONTENT_POLICY, "the simulated model refused (inproc)")


def _timed_out(budget_s: float) -> ProviderError:
    # The message the HTTP path's post_json gives when the budget runs out.
    return ProviderError(FailureClass.TIMEOUT, f"no complete response within {round(budget_s * 1000)} ms")
