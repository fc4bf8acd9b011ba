"""The gateway (issue 26): OpenAI- and Anthropic-compatible HTTP in front of the task log.

Each HTTP request becomes one task on ``swarm.tasks``; its answer is that task's result,
read from this instance's own reply topic. ``app.py`` wires the parts: ``routes.py``
(what a ``model`` runs), ``chat.py`` (a request as a task), ``openai_wire.py`` and
``anthropic_wire.py`` (each protocol's request, response, stream and error shapes),
``outcome.py`` (a result as status, answer, usage and ``x-swarm-*`` headers),
``replies.py`` (results back, lookups by id), ``idempotency.py`` and ``keys.py`` (keys,
tenants, rate limits, budgets), ``settings.py`` (``SWARM_GATEWAY_*``).
"""
