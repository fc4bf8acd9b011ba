"""The tool demo's task set and its summary, as plain values (``swarmstream demo --mode tools``).

Tasks the simulated fleet answers through tools (``agents/models/simulated/tooluse.py``):
arithmetic through the calculator (two sequential turns, or two parallel calls and a
sum), lookups, unit conversions, and emails under a policy that denies ``send_email``
(so every run shows denials). Each task is a consensus task: the models of the default
set make the same calls, which run once and are shared (the summary's cache hits).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from swarmstream.agents.tools.builtin import COUNTRIES, convert
from swarmstream.schemas.models import AuditEvent, TaskRequest, now_ms

NO_EMAIL_POLICY = "no-email"
"""The policy in the shipped tools.yaml that denies send_email."""


@dataclass(frozen=True)
class ToolDemoTask:
    task_id: str
    prompt: str
    answer_type: str
    answer: str | None  # None: no answer is expected (the call is denied)
    tools: tuple[str, ...]
    tool_policy: str | None = None


def tool_demo_tasks(n: int, seed: int = 7) -> list[ToolDemoTask]:
    """``n`` tasks, the kinds in turn, the same list for the same (n, seed)."""
    rng = random.Random(f"swarmstream-tool-demo:{seed}")
    tasks = []
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    for i in range(n):
        task_id = f"tools-{seed}-{i:05d}"
        kind = i % 5
        if kind == 0:
            a, b, c = rng.randint(2, 30), rng.randint(2, 30), rng.randint(2, 99)
            op1, op2 = rng.choice("+-*"), rng.choice("+-")
            answer = ops[op2](ops[op1](a, b), c)
            tasks.append(ToolDemoTask(task_id, f"What is ({a} {op1} {b}) {op2} {c}? Use the calculator. "
                                               "Answer with a number.", "number", str(answer), ("calculator",)))
        elif kind == 1:
            a, b, c, d = (rng.randint(2, 19) for _ in range(4))
            tasks.append(ToolDemoTask(task_id, f"What is {a} * {b} plus {c} * {d}? Use the calculator. "
                                               "Answer with a number.", "number", str(a * b + c * d), ("calculator",)))
        elif kind == 2:
            country = rng.choice(sorted(COUNTRIES))
            args = orjson.dumps({"country": country, "field": "capital"}).decode()
            tasks.append(ToolDemoTask(task_id, f"What is the capital of {country.title()}?\ntool: lookup {args}",
                                      "text", COUNTRIES[country]["capital"], ("lookup",)))
        elif kind == 3:
            value = rng.randint(1, 500)
            args = orjson.dumps({"value": value, "from_unit": "km", "to_unit": "m"}).decode()
            tasks.append(ToolDemoTask(task_id, f"How many metres are {value} km?\ntool: convert_units {args}",
                                      "number", str(int(convert(value, "km", "m"))), ("convert_units",)))
        else:
            args = orjson.dumps({"to": "ops@example.com", "subject": f"report {i}", "body": "numbers"}).decode()
            tasks.append(ToolDemoTask(task_id, f"Email the report.\ntool: send_email {args}", "text", None,
                                      ("send_email",), NO_EMAIL_POLICY))
    return tasks


def to_tool_request(item: ToolDemoTask, *, models: list[str], timeout_ms: int = 30_000) -> TaskRequest:
    return TaskRequest(task_id=f"{item.task_id}-{now_ms()}", prompt=item.prompt,
                       answer_type=item.answer_type, mode="consensus", models=models,  # type: ignore[arg-type]
                       tools=list(item.tools), tool_policy=item.tool_policy, timeout_ms=timeout_ms)


def audit_summary(events: Iterable[AuditEvent], task_ids: set[str]) -> dict[str, float | int]:
    """Tool calls per task (every decided call, shared ones included), denials, and cache hits
    (calls answered by another call's execution: shared in flight or reused from the ledger)."""
    decided = [e for e in events if e.task_id in task_ids and e.decision != "awaiting_approval"]
    return {
        "tool_calls_per_task": round(len(decided) / len(task_ids), 3) if task_ids else 0.0,
        "denied": sum(1 for e in decided if e.decision == "denied"),
        "cache_hits": sum(1 for e in decided if e.decision in ("shared", "reused")),
        "executed": sum(1 for e in decided if e.decision == "allowed"),
    }
