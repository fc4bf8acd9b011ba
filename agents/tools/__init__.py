"""Tool use: models call registered tools (JSON-schema validated, permission-checked,
audited) over several turns until they answer (DESIGN.md, "Tool use").

Pure modules: ``registry`` (tools.yaml and ``@tool``), ``validation``, ``permissions``,
``redaction``, ``conversation`` (turns and stops), ``windowing``, ``coordination``
(votes, shared executions, ledger keys), ``turns`` (the model caller's side).
I/O without Faust: ``execution`` (handlers), ``mcp`` (MCP servers through the SDK),
``builtin`` (the demo tools). ``agent`` holds the handlers that move tool events;
``streams/app/tools.py`` wires them.
"""
