"""Tool use end to end on the real broker: the loop over topics, in both protocols."""

from __future__ import annotations

from swarmstream.schemas.models import TaskRequest


def tool_task(prompt: str, model: str, *, tools: tuple[str, ...] = ("calculator",), answer_type: str = "number",
              mode: str = "single", models: list[str] | None = None, **extra: object) -> TaskRequest:
    return TaskRequest(prompt=prompt, answer_type=answer_type, mode=mode, models=models or [model],  # type: ignore[arg-type]
                       tools=list(tools), timeout_ms=extra.pop("timeout_ms", 15_000), **extra)  # type: ignore[arg-type]


async def test_two_tool_calls_over_two_turns_in_both_protocols(stack) -> None:
    tasks = {model: tool_task("What is (17 * 23) + 5? Use the calculator. Answer with a number.", model)
             for model in ("tool-a", "tool-b")}
    for task in tasks.values():
        await stack.client.submit(task)
    for model, task in tasks.items():
        result = await stack.client.result(task.task_id, timeout_s=30)
        assert (result.status, result.answer, result.answered_by) == ("ok", "396", model)
