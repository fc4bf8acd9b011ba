"""What keeps a replay away from production: its own consumer group, its own output topics.

A replay reads the topics a live run wrote and may publish what it re-scored
(``swarmstream replay --to-topic``). It must never look like a worker to the
broker or to a consumer of real results:

* **group**: a replay reads with its own group, ``<app_id>.replay.<random>``
  (:func:`replay_group`), with manually assigned partitions and no commits, so
  the workers' group is never joined, rebalanced or moved. A group equal to the
  workers' (``app_id``) or inside their namespace (``<app_id>-...``, Faust's
  names) is refused (:func:`check_group`).
* **output topics**: every topic the live pipeline reads or writes is refused
  (:func:`check_output_topic`): the named ones (tasks, results, responses,
  failures, feedback, ...), every model topic (``<prefix>.model.<id>``), every
  workflow step topic (``<prefix>.step.<workflow>.<step>``) and Faust's own
  (``<app_id>-...``, ``...-changelog``). The default output is
  ``<prefix>.replay.results``.
* **no model call, no tool**: replay decides from recorded answers with the
  consensus and selection functions only; nothing under ``agents/replay``
  imports a provider, an HTTP client or the tool registry
  (``tests/agents/replay/test_isolation.py`` checks the imports, and the
  end-to-end test checks the simulated fleet's call counters).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

REPLAY_TOPIC_SUFFIX = "replay.results"
PRODUCTION_PREFIXES = ("model.", "step.")
"""Families of topics under the run's prefix that workers own (one topic per model, per workflow step)."""


class IsolationError(ValueError):
    """A replay asked to touch something production owns: the message says what and what to use instead."""


def default_output_topic(prefix: str) -> str:
    return f"{prefix}.{REPLAY_TOPIC_SUFFIX}"


def replay_group(app_id: str) -> str:
    """A fresh consumer group for one replay, never the workers' (``app_id``)."""
    return f"{app_id}.replay.{uuid.uuid4().hex[:8]}"


def check_group(group: str, app_id: str) -> str:
    if not group.strip():
        raise IsolationError("replay consumer group: empty; leave it out for a fresh one")
    if group == app_id or group.startswith(f"{app_id}-"):
        raise IsolationError(
            f"replay consumer group {group!r} is the workers' group (SWARM_APP_ID={app_id!r}) or one of Faust's; "
            f"a replay must not join it: use {replay_group(app_id)!r} or leave it out")
    return group


def check_output_topic(name: str, *, prefix: str, app_id: str, production_topics: Collection[str]) -> str:
    """``name`` if a replay may publish to it, else :class:`IsolationError` naming why."""
    suggestion = default_output_topic(prefix)
    if not name.strip():
        raise IsolationError(f"--to-topic: empty topic name (use {suggestion!r})")
    why = None
    if name in production_topics:
        why = "a topic the live pipeline reads or writes"
    elif any(name.startswith(f"{prefix}.{family}") for family in PRODUCTION_PREFIXES):
        why = f"a {name.removeprefix(prefix + '.').split('.')[0]} topic the workers consume"
    elif name.startswith((f"{app_id}-", "__")) or name.endswith("-changelog"):
        why = "a Faust or broker internal topic"
    if why is not None:
        raise IsolationError(f"--to-topic {name!r}: refused, it is {why}; a replay publishes only to its own "
                             f"topics (for example {suggestion!r})")
    return name
