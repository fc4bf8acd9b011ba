"""Loop control (stops) and context windowing: pure, table-driven."""

from __future__ import annotations

import pytest
from swarmstream.agents.tools.conversation import (
    Conversation,
    LoopLimits,
    ProposedCall,
    Stop,
    ToolMessage,
    after_calls,
    check_calls,
    failure_class_for,
    with_results,
)
from swarmstream.agents.tools.windowing import conversation_tokens, window


def proposed(digest: str = "d1", name: str = "calc") -> ProposedCall:
    return ProposedCall(call_id="c", name=name, arguments="{}", digest=digest, shown_arguments="{}")


LIMITS = LoopLimits(max_turns=4, max_tool_calls=3, max_identical_calls=2)


@pytest.mark.parametrize(
    ("conversation", "calls", "turn", "stop"),
    [
        (Conversation(), [proposed()], 0, None),
        (Conversation(), [proposed()], 2, None),
        (Conversation(), [proposed()], 3, Stop.MAX_TURNS),  # the last turn must answer
        (Conversation(calls=2), [proposed("a"), proposed("b")], 1, Stop.MAX_TOOL_CALLS),
        (Conversation(calls=2), [proposed("a")], 1, None),
        (Conversation(signatures={"d1": 1}), [proposed("d1")], 1, None),
        (Conversation(signatures={"d1": 2}), [proposed("d1")], 2, Stop.TOOL_LOOP),
        (Conversation(signatures={"d1": 1}), [proposed("d1"), proposed("d1")], 1, Stop.TOOL_LOOP),  # within a turn
    ],
)
def test_stops(conversation, calls, turn, stop) -> None:
    reason = check_calls(conversation, calls, turn=turn, limits=LIMITS)
    assert (reason.stop if reason else None) == stop
    if reason:
        assert reason.message.startswith(stop.value)


def test_a_stop_is_a_failure_class_the_chain_planner_knows_in_chain_mode() -> None:
    assert failure_class_for(Stop.TOOL_LOOP, "single") == "tool_loop"
    assert failure_class_for(Stop.TOOL_LOOP, "chain") == "invalid_output"


def test_turns_accumulate_calls_signatures_and_cost_and_round_trip_as_json() -> None:
    conversation = after_calls(Conversation(), text="thinking", calls=[proposed("a"), proposed("b")], cost_micros=5,
                               input_tokens=10, output_tokens=3)
    conversation = with_results(conversation, [ToolMessage("c", "calc", "4", False, cost_micros=2),
                                               ToolMessage("c", "calc", "bad", True)])
    assert (conversation.calls, conversation.signatures, conversation.cost_micros) == (2, {"a": 1, "b": 1}, 7)
    assert [m["role"] for m in conversation.messages] == ["assistant", "tool", "tool"]
    assert Conversation.from_json(conversation.to_json()) == conversation


def turn(i: int, result_chars: int) -> list[dict]:
    return [{"role": "assistant", "text": f"turn {i} " * 20, "calls": [{"id": f"c{i}", "name": "read", "arguments": "{}"}]},
            {"role": "tool", "id": f"c{i}", "name": "read", "content": "x" * result_chars, "error": False}]


def test_a_conversation_within_budget_is_sent_as_it_is() -> None:
    messages = turn(0, 100) + turn(1, 100)
    assert window(messages, budget_tokens=10_000) == messages


def test_older_results_are_cut_then_elided_the_last_turns_kept_whole() -> None:
    messages = turn(0, 20_000) + turn(1, 20_000) + turn(2, 20_000) + turn(3, 20_000)
    budget = conversation_tokens(turn(2, 20_000) + turn(3, 20_000)) + 2_000

    shortened = window(messages, budget_tokens=budget, keep_last_turns=2, tool_result_chars=2_000)

    assert conversation_tokens(shortened) <= budget
    assert shortened[4:] == messages[4:]  # the last two turns untouched
    assert len(shortened) == len(messages)  # every call keeps its result message
    assert shortened[1]["content"].startswith("x" * 2_000) and "[truncated 18000 chars]" in shortened[1]["content"]
    assert shortened[3]["content"].startswith("x" * 2_000)


def test_when_cutting_is_not_enough_old_results_are_elided_with_a_note() -> None:
    messages = turn(0, 20_000) + turn(1, 20_000) + turn(2, 100)
    budget = conversation_tokens(turn(2, 100)) + 400

    shortened = window(messages, budget_tokens=budget, keep_last_turns=1, tool_result_chars=2_000)

    assert shortened[1]["content"].startswith("[elided to fit the context: result of read, 20000 chars")
    assert shortened[4:] == messages[4:]
    assert conversation_tokens(shortened) <= budget
