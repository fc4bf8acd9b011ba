"""Context windowing: what of a long tool conversation a model is sent.

A conversation grows by every call and result; a few large results (a page of
search hits, a file) can outgrow the model's context. The policy, applied to the
conversation before each turn is sent, in steps until it fits the budget:

1. never touched: the system prompt, the task's prompt, the tool definitions
   (they are not in the message list at all) and the last ``keep_last_turns``
   turns (a turn is an assistant message and the results of its calls);
2. older tool results are cut to ``tool_result_chars`` characters, with a marker
   saying how much was cut (the model may call the tool again for the rest);
3. if still too big, older tool results are replaced by a one-line note naming
   the tool and the size;
4. if still too big, older assistant texts are dropped (their calls stay).

Messages are never removed: every provider requires each tool result to follow
the call that asked for it. A conversation whose last turns alone exceed the
budget is sent as it is, and the provider's ``context_length`` failure says so.
Budgets are in estimated tokens (4 characters each, OpenAI's rule of thumb).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def message_tokens(message: dict[str, Any]) -> int:
    size = len(message.get("text") or "") + len(message.get("content") or "")
    size += sum(len(c.get("arguments") or "") + len(c.get("name") or "") for c in message.get("calls") or ())
    return (size + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN + 4  # + per-message framing


def conversation_tokens(messages: Sequence[dict[str, Any]]) -> int:
    return sum(message_tokens(m) for m in messages)


def _turn_starts(messages: Sequence[dict[str, Any]]) -> list[int]:
    return [i for i, m in enumerate(messages) if m.get("role") == "assistant"]


def window(
    messages: Sequence[dict[str, Any]],
    *,
    budget_tokens: int,
    keep_last_turns: int = 2,
    tool_result_chars: int = 2_000,
) -> list[dict[str, Any]]:
    """The messages shortened by the module's policy until they fit ``budget_tokens``."""
    result = [dict(m) for m in messages]
    if conversation_tokens(result) <= budget_tokens:
        return result
    starts = _turn_starts(result)
    protected_from = starts[-keep_last_turns] if len(starts) >= keep_last_turns else 0
    older = range(protected_from)

    for i in older:  # step 2: cut
        message = result[i]
        content = message.get("content")
        if message.get("role") == "tool" and isinstance(content, str) and len(content) > tool_result_chars:
            cut = len(content) - tool_result_chars
            result[i] = {**message, "content": f"{content[:tool_result_chars]}…[truncated {cut} chars]"}
    if conversation_tokens(result) <= budget_tokens:
        return result
    for i in older:  # step 3: elide
        message = result[i]
        if message.get("role") == "tool" and not str(message.get("content", "")).startswith("[elided"):
            size = len(messages[i].get("content") or "")
            result[i] = {**message, "content": f"[elided to fit the context: result of {message.get('name')}, "
                                               f"{size} chars; call the tool again if you need it]"}
        if conversation_tokens(result) <= budget_tokens:
            return result
    for i in older:  # step 4: drop old assistant texts
        if result[i].get("role") == "assistant" and result[i].get("text"):
            result[i] = {**result[i], "text": ""}
            if conversation_tokens(result) <= budget_tokens:
                return result
    return result


def budget_for(context_window: int, max_tokens: int, fixed_text: str) -> int:
    """Tokens left for the conversation: the window minus the answer's room and the fixed part."""
    return max(0, context_window - max_tokens - estimate_tokens(fixed_text))
