"""The gateway's pure parts, without a broker: routes, a request as a task, the wire shapes,
keys, rate limits and budgets, idempotency claims."""

from __future__ import annotations

import orjson
import pytest
from swarmstream.schemas.models import CastVote, ChatMessage, TaskResult
from swarmstream.streams.gateway import anthropic_wire, openai_wire
from swarmstream.streams.gateway.chat import to_task
from swarmstream.streams.gateway.errors import GatewayError
from swarmstream.streams.gateway.idempotency import Idempotency, task_id_for
from swarmstream.streams.gateway.keys import KeyEntry, Keys, hash_key
from swarmstream.streams.gateway.outcome import answer_of, error_of, headers_of
from swarmstream.streams.gateway.routes import Route, resolve

MODELS = ("fast-a", "fast-b")


@pytest.mark.parametrize(("model", "fields"), [
    ("fast-a", {"mode": "single", "models": ["fast-a"]}),
    ("swarm/consensus", {"mode": "consensus"}),
    ("swarm/consensus:weighted", {"mode": "consensus", "strategy": "weighted"}),
    ("chain/two", {"mode": "chain", "chain": "two"}),
    ("select/thompson", {"mode": "select", "policy": "thompson"}),
    ("workflow/triage", {"mode": "consensus", "workflow": "triage"}),
    ("cheap", {"mode": "consensus", "models": ["fast-b"]}),
])
def test_a_model_names_its_route(model: str, fields: dict) -> None:
    declared = {"cheap": Route("cheap", {"mode": "consensus", "models": ["fast-b"]})}
    assert dict(resolve(model, models=MODELS, declared=declared, chains=["two"]).fields) == fields


@pytest.mark.parametrize("model", ["gpt-5", "chain/nope", "chain/", "swarm/consensus:"])
def test_an_unknown_model_or_route_is_404_naming_the_model(model: str) -> None:
    with pytest.raises(GatewayError) as error:
        resolve(model, models=MODELS, declared={}, chains=["two"])
    assert (error.value.status, error.value.param) == (404, "model")


def openai_call(**body: object):
    return openai_wire.read_request({"model": "fast-a", "messages": [{"role": "user", "content": "Hi?"}], **body})


def test_an_openai_request_becomes_one_task_with_its_chat_sampling_and_extension() -> None:
    call = openai_call(messages=[{"role": "developer", "content": "Be brief."},
                                 {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "2 + 2?"}]}],
                       temperature=0.2, top_p=0.9, seed=7, stop="END", max_completion_tokens=50,
                       swarm={"early_stop": True, "answer_type": "number"})
    task = to_task(call, Route("swarm/consensus", {"mode": "consensus"}), task_id="t1", tenant="acme",
                   reply_to="swarm.results.gw")
    assert task.prompt == "What is 2 + 2?"
    assert [m.role for m in task.messages] == ["system", "user"]
    assert (task.temperature, task.top_p, task.seed, task.stop, task.max_tokens) == (0.2, 0.9, 7, ["END"], 50)
    assert (task.early_stop, task.answer_type, task.tenant, task.reply_to) == (True, "number", "acme", "swarm.results.gw")


@pytest.mark.parametrize(("swarm", "param"), [
    ({"tenant": "someone-else"}, "swarm.tenant"),  # a key's tenant pays, not the request's
    ({"task_id": "x"}, "swarm.task_id"),
    ({"min_models": -1}, "swarm.min_models"),
])
def test_an_extension_field_a_request_may_not_set_is_400_naming_it(swarm: dict, param: str) -> None:
    with pytest.raises(GatewayError) as error:
        to_task(openai_call(swarm=swarm), Route("m"), task_id="t", tenant="acme", reply_to=None)
    assert (error.value.status, error.value.param) == (400, param)


def test_an_open_gateway_takes_the_tenant_from_the_extension() -> None:
    task = to_task(openai_call(swarm={"tenant": "team-b"}), Route("m"), task_id="t", tenant="default", reply_to=None,
                   tenant_settable=True)
    assert task.tenant == "team-b"


def test_a_chat_without_user_text_is_400_on_messages() -> None:
    with pytest.raises(GatewayError) as error:
        to_task(openai_call(messages=[{"role": "system", "content": "x"}]), Route("m"), task_id="t", tenant="a",
                reply_to=None)
    assert error.value.param == "messages"


def test_an_anthropic_request_maps_system_tool_use_and_results_and_the_swarm_header() -> None:
    call = anthropic_wire.read_request({
        "model": "fast-a", "max_tokens": 20, "system": "Be brief.", "stop_sequences": ["X"],
        "messages": [
            {"role": "user", "content": "What is 17 * 23?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "tu1", "name": "calc", "input": {"e": "17*23"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": "391"}]},
        ],
        "tools": [{"name": "calc", "input_schema": {"type": "object"}}],
    }, header_swarm='{"models": ["fast-a", "fast-b"]}')
    assert [(m.role, m.content, m.tool_call_id) for m in call.messages] == [
        ("system", "Be brief.", None), ("user", "What is 17 * 23?", None), ("assistant", "", None), ("tool", "391", "tu1")]
    assert call.messages[2].tool_calls[0].arguments == '{"e":"17*23"}'
    assert call.swarm == {"models": ["fast-a", "fast-b"]}
    assert call.sampling == {"max_tokens": 20, "stop": ["X"]}
    assert [t.name for t in call.tools] == ["calc"]


RESULT = TaskResult(task_id="t1", status="ok", answer="42", agreement=2 / 3, cost_micros=1500, input_tokens=30,
                    output_tokens=6, votes=[CastVote(model_id="fast-a", answer="42"), CastVote(model_id="fast-b", answer="41")])


def test_a_result_in_each_protocol_s_shape_with_summed_usage_and_the_swarm_s_view() -> None:
    answer = answer_of(RESULT, offered_tools=False)
    body = openai_wire.response("swarm/consensus", RESULT, answer)
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "42"}
    assert body["usage"] == {"prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36}
    assert [v["model"] for v in body["swarm"]["votes"]] == ["fast-a", "fast-b"]
    message = anthropic_wire.response("swarm/consensus", RESULT, answer)
    assert (message["content"], message["stop_reason"]) == ([{"type": "text", "text": "42"}], "end_turn")
    assert headers_of(RESULT) == {"x-swarm-task-id": "t1", "x-swarm-status": "ok", "x-swarm-agreement": "0.6667",
                                  "x-swarm-models": "fast-a,fast-b", "x-swarm-cost-usd": "0.001500"}


@pytest.mark.parametrize(("status", "code"), [("timeout", 504), ("budget_exceeded", 429), ("rejected", 503),
                                               ("failed", 502)])
def test_a_result_without_an_answer_is_an_error_naming_the_task(status: str, code: int) -> None:
    error = error_of(TaskResult(task_id="t9", status=status, reason="why"))
    assert error is not None and (error.status, error.task_id) == (code, "t9") and "t9" in error.message
    assert error_of(RESULT) is None


def test_the_openai_stream_is_role_then_content_then_finish_usage_and_done() -> None:
    stream = openai_wire.Stream("m", "t1", include_usage=True)
    frames = [stream.start(), stream.keep_alive, *stream.answer(RESULT, answer_of(RESULT, False))]
    assert frames[1] == b": keep-alive\n\n" and frames[-1] == b"data: [DONE]\n\n"
    chunks = [orjson.loads(f.removeprefix(b"data: ")) for f in frames if f.startswith(b"data: {")]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["delta"] == {"content": "42"}
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[3]["choices"] == [] and chunks[3]["usage"]["total_tokens"] == 36


def test_keys_are_matched_by_digest_rate_limited_and_budgeted() -> None:
    now = [0.0]
    keys = Keys([KeyEntry(sha256=hash_key("sk-a"), tenant="acme", rate_per_s=1, burst=2),
                 KeyEntry(sha256=hash_key("sk-b"), tenant="broke", budget_usd_per_day=0.01, forecast_usd=0.004)],
                clock=lambda: now[0])
    with pytest.raises(GatewayError, match="invalid API key") as error:
        keys.authenticate("sk-wrong")
    assert "sk-wrong" not in str(error.value)
    entry = keys.authenticate("sk-a")
    keys.admit(entry)
    keys.admit(entry)
    with pytest.raises(GatewayError) as limited:
        keys.admit(entry)
    assert limited.value.status == 429
    now[0] += 1.0
    keys.admit(entry)  # a token back after a second

    broke = keys.authenticate("sk-b")
    first, second = keys.reserve(broke, 0), keys.reserve(broke, 0)
    with pytest.raises(GatewayError, match="budget"):
        keys.reserve(broke, 0)  # 0.008 reserved, 0.004 more does not fit in 0.01
    keys.settle(first, 1000)
    keys.settle(second, 1000)
    assert keys.reserve(broke, 0) is not None  # 0.002 spent: room again


def test_an_open_gateway_has_no_keys_and_one_tenant() -> None:
    keys = Keys([])
    assert keys.authenticate(None) is None and keys.tenant(None) == "default"


def test_an_idempotency_key_is_one_task_per_tenant_and_refuses_another_body() -> None:
    claims = Idempotency()
    first = claims.claim("acme", "k1", "body-a", created_ms=5)
    again = claims.claim("acme", "k1", "body-a", created_ms=9)
    assert first.fresh and not again.fresh
    assert again.task_id == first.task_id == task_id_for("acme", "k1") and again.created_ms == 5
    assert claims.claim("other", "k1", "body-a", created_ms=9).task_id != first.task_id
    with pytest.raises(GatewayError, match="different request body"):
        claims.claim("acme", "k1", "body-b", created_ms=9)


def test_idempotency_memory_is_bounded() -> None:
    claims = Idempotency(kept=3)
    for i in range(10):
        claims.claim("t", f"k{i}", "b", created_ms=i)
    assert len(claims) == 3


def test_a_consensus_tool_call_answer_comes_back_as_calls_with_stable_ids() -> None:
    from swarmstream.agents.models.client_tools import answer_of as calls_answer

    result = TaskResult(task_id="t1", status="ok", answer=calls_answer([("calc", '{"e": "1+1"}')]))
    answer = answer_of(result, offered_tools=True)
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [("calc", '{"e":"1+1"}')]
    assert answer.tool_calls == answer_of(result, offered_tools=True).tool_calls
    assert openai_wire.response("m", result, answer)["choices"][0]["finish_reason"] == "tool_calls"
    assert anthropic_wire.response("m", result, answer)["content"][0]["input"] == {"e": "1+1"}
    assert answer_of(result, offered_tools=False).text == result.answer  # no tools offered: plain text
    assert ChatMessage(role="tool", content="2", tool_call_id=answer.tool_calls[0].id).tool_call_id.startswith("call_")
