"""A replay keeps away from production: its own group, its own topics, no model or tool code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from swarmstream.agents.replay.isolation import (
    IsolationError,
    check_group,
    check_output_topic,
    default_output_topic,
    replay_group,
)

PREFIX, APP = "swarm", "swarmstream"
PRODUCTION = [f"swarm.{n}" for n in ("tasks", "feedback", "select", "delays", "responses", "failures", "calls",
                                     "quality", "selections", "results", "review", "dead-letters")] + ["swarm.model.a"]


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("swarm.results", "reads or writes"),
        ("swarm.tasks", "reads or writes"),
        ("swarm.feedback", "reads or writes"),
        ("swarm.model.a", "reads or writes"),
        ("swarm.model.not-in-the-catalog", "a model topic"),
        ("swarm.step.review.vote", "a step topic"),
        ("swarmstream-consensus-changelog", "internal"),
        ("other-app-spend-changelog", "internal"),
        ("__consumer_offsets", "internal"),
        ("  ", "empty"),
    ],
)
def test_production_topics_are_refused(topic: str, why: str) -> None:
    with pytest.raises(IsolationError, match=why) as info:
        check_output_topic(topic, prefix=PREFIX, app_id=APP, production_topics=PRODUCTION)
    assert default_output_topic(PREFIX) in str(info.value)  # says what to use instead


@pytest.mark.parametrize("topic", ["swarm.replay.results", "eval.majority-vs-weighted", "swarm.resultsx"])
def test_own_topics_are_allowed(topic: str) -> None:
    assert check_output_topic(topic, prefix=PREFIX, app_id=APP, production_topics=PRODUCTION) == topic


def test_groups() -> None:
    group = replay_group(APP)
    assert group.startswith(f"{APP}.replay.") and group != replay_group(APP)
    assert check_group(group, APP) == group
    for bad in (APP, f"{APP}-anything", " "):
        with pytest.raises(IsolationError):
            check_group(bad, APP)


FORBIDDEN = ("swarmstream.agents.tools", "swarmstream.agents.models.providers", "swarmstream.agents.models.agent",
             "swarmstream.streams", "httpx", "aiohttp", "aiokafka", "faust", "mcp")


def test_replay_code_imports_no_model_client_tool_or_broker() -> None:
    """Replay decides from recorded answers only: nothing it imports can call a model, run a
    tool or touch a topic (streams/cli/recorder.py does the broker I/O, outside this package)."""
    folder = Path(__file__).resolve().parents[3] / "agents" / "replay"
    offenders = []
    for source in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{source.name}: {n}" for n in names if n.startswith(FORBIDDEN)]
    assert len(list(folder.glob("*.py"))) >= 8
    assert offenders == []
