"""A task's whole chat reaches the model turn by turn (issue 26), in each protocol's shape,
and a call of a caller's own tool comes back as the answer."""

from __future__ import annotations

from swarmstream.agents.models import client_tools
from swarmstream.agents.models.providers.anthropic import build_messages_body
from swarmstream.agents.models.providers.base import ChatRequest
from swarmstream.agents.models.providers.openai import build_chat_body
from swarmstream.schemas.models import ChatMessage, ChatToolCall, ClientTool

CHAT = (
    ChatMessage(role="system", content="Be brief."),
    ChatMessage(role="user", content="What is 17 * 23?"),
    ChatMessage(role="assistant", tool_calls=[ChatToolCall(id="c1", name="calculator", arguments='{"expression": "17 * 23"}')]),
    ChatMessage(role="tool", content="391", tool_call_id="c1"),
    ChatMessage(role="assistant", content="391"),
    ChatMessage(role="user", content="Thanks"),
)


def test_openai_sends_the_chat_as_it_is_instead_of_system_and_prompt() -> None:
    body = build_chat_body("gpt", [], ChatRequest(prompt="Thanks", system="ignored", messages=CHAT))
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 17 * 23?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "17 * 23"}'}}]},
        {"role": "tool", "content": "391", "tool_call_id": "c1"},
        {"role": "assistant", "content": "391"},
        {"role": "user", "content": "Thanks"},
    ]


def test_anthropic_lifts_system_turns_and_renders_tool_use_and_results() -> None:
    body = build_messages_body("claude", ChatRequest(prompt="Thanks", messages=CHAT))
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": "What is 17 * 23?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "calculator",
                                           "input": {"expression": "17 * 23"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "391"}]},
        {"role": "assistant", "content": "391"},
        {"role": "user", "content": "Thanks"},
    ]


def test_without_a_chat_the_prompt_is_the_question() -> None:
    body = build_chat_body("gpt", [], ChatRequest(prompt="2 + 2?", system="s"))
    assert body["messages"] == [{"role": "system", "content": "s"}, {"role": "user", "content": "2 + 2?"}]


def test_client_tool_calls_become_one_canonical_answer_whatever_the_key_order() -> None:
    a = client_tools.answer_of([("calculator", '{"b": 1, "a": 2}')])
    b = client_tools.answer_of([("calculator", '{"a":2,"b":1}')])
    assert a == b
    assert client_tools.calls_in(a) == [client_tools.ProposedCall("calculator", '{"a":2,"b":1}')]
    assert client_tools.calls_in("42") is None
    assert client_tools.calls_in('{"answer": 1}') is None
    offered = client_tools.offered([ClientTool(name="calculator", parameters='{"type": "object"}'),
                                    ClientTool(name="broken", parameters="not json")])
    assert [t["input_schema"] for t in offered] == [{"type": "object"}, {"type": "object", "properties": {}}]
