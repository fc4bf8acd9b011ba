"""Tool calls in both provider protocols, one contract: the offered tools, the conversation
and the calls, rendered and read in each protocol's own shape, and a whole two-turn loop
against the simulated fleet on loopback HTTP (OpenAI ``tools``/``tool_calls``/``role: tool``;
Anthropic ``tool_use``/``tool_result`` blocks)."""

from __future__ import annotations

import orjson
import pytest
from swarmstream.agents.models.catalog import ModelSpec, SimProfile
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.models.providers import build_provider
from swarmstream.agents.models.providers.anthropic import (
    build_messages_body,
    parse_message,
)
from swarmstream.agents.models.providers.base import ChatRequest
from swarmstream.agents.models.providers.openai import (
    build_chat_body,
    parse_chat_completion,
)
from swarmstream.agents.models.simulated.fleet import SimFleet
from swarmstream.agents.models.simulated.tooluse import PastCall, plan
from swarmstream.agents.tools.builtin import calculator
from swarmstream.agents.tools.registry import TOOL_ATTRIBUTE

CALCULATOR = getattr(calculator, TOOL_ATTRIBUTE).definition()
CONVERSATION = (
    {"role": "assistant", "text": "", "calls": [{"id": "c1", "name": "calculator", "arguments": '{"expression":"1+1"}'},
                                                {"id": "c2", "name": "calculator", "arguments": '{"expr":"2"}'}]},
    {"role": "tool", "id": "c1", "name": "calculator", "content": '{"result":2}', "error": False},
    {"role": "tool", "id": "c2", "name": "calculator", "content": "invalid arguments: ...", "error": True},
)
REQUEST = ChatRequest(prompt="What is 1+1?", system="be brief", tools=(CALCULATOR,), conversation=CONVERSATION)


def test_openai_renders_tools_calls_and_tool_messages() -> None:
    body = build_chat_body("gpt", [], REQUEST)
    assert body["tools"] == [{"type": "function", "function": {"name": "calculator",
                                                               "description": CALCULATOR["description"],
                                                               "parameters": CALCULATOR["input_schema"]}}]
    system, user, assistant, first, second = body["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["calculator", "calculator"]
    assert assistant["tool_calls"][0] == {"id": "c1", "type": "function",
                                          "function": {"name": "calculator", "arguments": '{"expression":"1+1"}'}}
    assert first == {"role": "tool", "tool_call_id": "c1", "content": '{"result":2}'}
    assert second["content"].startswith("error: invalid arguments")  # no error flag in this protocol


def test_anthropic_renders_tool_use_and_one_user_message_of_tool_results() -> None:
    body = build_messages_body("claude", REQUEST)
    assert body["tools"] == [{"name": "calculator", "description": CALCULATOR["description"],
                              "input_schema": CALCULATOR["input_schema"]}]
    user, assistant, results = body["messages"]
    assert user == {"role": "user", "content": "What is 1+1?"}
    assert [b["type"] for b in assistant["content"]] == ["tool_use", "tool_use"]
    assert assistant["content"][0]["input"] == {"expression": "1+1"}
    assert results["role"] == "user"
    assert [(b["tool_use_id"], b["is_error"]) for b in results["content"]] == [("c1", False), ("c2", True)]


def test_both_protocols_read_tool_calls() -> None:
    openai = parse_chat_completion(orjson.dumps({
        "model": "gpt", "choices": [{"finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": "x", "type": "function", "function": {"name": "calculator", "arguments": "{bad"}}]}}],
    }))
    assert (openai.finish_reason, openai.text) == ("tool_calls", "")
    assert [(c.call_id, c.name, c.arguments) for c in openai.tool_calls] == [("x", "calculator", "{bad")]
    anthropic = parse_message(orjson.dumps({
        "model": "claude", "stop_reason": "tool_use",
        "content": [{"type": "text", "text": "let me"}, {"type": "tool_use", "id": "y", "name": "lookup",
                                                          "input": {"country": "peru", "field": "capital"}}],
    }))
    assert (anthropic.finish_reason, anthropic.text) == ("tool_calls", "let me")
    assert [(c.call_id, c.name, orjson.loads(c.arguments)) for c in anthropic.tool_calls] == [
        ("y", "lookup", {"country": "peru", "field": "capital"})]


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_a_two_turn_loop_against_the_simulated_fleet(protocol) -> None:
    model = f"sim-{protocol}"
    async with SimFleet({model: SimProfile(protocol=protocol, latency_median_ms=0, latency_p99_ms=0)}) as fleet:
        spec = ModelSpec(id=model, provider="simulated", family="f", endpoint=fleet.base_url,
                         simulated=SimProfile(protocol=protocol))
        async with ClientPool() as pool:
            provider = build_provider(spec, pool)
            conversation: tuple[dict, ...] = ()
            for _ in range(3):
                reply = await provider.complete(ChatRequest(
                    prompt="What is (17 * 23) + 5? Answer with a number.", tools=(CALCULATOR,),
                    conversation=conversation))
                if not reply.tool_calls:
                    break
                assert reply.finish_reason == "tool_calls"
                calls = [{"id": c.call_id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls]
                results = [{"role": "tool", "id": c.call_id, "name": c.name, "error": False,
                            "content": orjson.dumps(calculator(**orjson.loads(c.arguments))).decode()}
                           for c in reply.tool_calls]
                conversation = (*conversation, {"role": "assistant", "text": reply.text, "calls": calls}, *results)
            assert reply.text == "396"
            assert len(conversation) == 4  # two turns of one call each
        assert fleet.tool_turns[model] == 3


@pytest.mark.parametrize(
    ("behaviour", "first"),
    [
        ("correct", ("calculator", '{"expression":"6 * 7"}')),
        ("malformed", ("calculator", '{"expression_":"6 * 7"}')),
        ("bad_json", ("calculator", '{"expression":"6 * 7"')),
        ("unknown_tool", ("calculator_v2", '{"expression":"6 * 7"}')),
    ],
)
def test_simulated_misbehaviour_then_correction(behaviour, first) -> None:
    prompt = "What is 6 * 7? Answer with a number."
    step = plan(prompt, ["calculator"], [], behaviour)
    assert step is not None and [(c.name, c.arguments) for c in step.calls] == [first]
    error = PastCall(first[0], first[1], "invalid arguments: ..." if behaviour != "unknown_tool" else "unknown tool",
                     behaviour != "correct")
    ok = PastCall("calculator", '{"expression":"6 * 7"}', '{"result":42}', False)
    history = [[ok]] if behaviour == "correct" else [[error]]
    following = plan(prompt, ["calculator"], history, behaviour)
    if behaviour == "correct":
        assert following is not None and following.answer == "42"
    else:  # reads the error and sends the call right
        assert following is not None and [(c.name, c.arguments) for c in following.calls] == [
            ("calculator", '{"expression":"6 * 7"}')]


def test_a_looping_model_repeats_and_other_errors_make_it_give_up() -> None:
    ok = PastCall("calculator", "{}", '{"result":42}', False)
    prompt = "What is 6 * 7? Answer with a number."
    assert plan(prompt, ["calculator"], [[ok], [ok]], "loop").calls == plan(prompt, ["calculator"], [], "loop").calls
    denied = PastCall("calculator", "{}", "permission denied: no", True)
    assert plan(prompt, ["calculator"], [[denied]]).answer == "could not complete: permission denied: no"


def test_directives_per_model() -> None:
    prompt = 'tool@m1: record {"text": "w"}\ntool@m2: read {"text": "w"}\nthen\ntool: read {"text": "{0}!"}'
    assert [c.name for c in plan(prompt, [], [], model="m1").calls] == ["record"]
    assert [c.name for c in plan(prompt, [], [], model="m2").calls] == ["read"]
    second = plan(prompt, [], [[PastCall("read", "{}", '{"value":"w"}', False)]], model="m2")
    assert [c.arguments for c in second.calls] == ['{"text": "w!"}']
    assert plan("What is the capital of France?", ["calculator"], []) is None
