"""Declarative "Reactor" workflows: steps declared in YAML, linked by topics.

    dsl.py         the workflows file (pydantic): steps, branches, strategy choice, middleware
    graph.py       the step graph across workflows and its cycle check (load time)
    templates.py   prompts as templates over the task and earlier steps' outputs
    conditions.py  the small, safe expression language of branches and strategy choice
    middleware.py  before/after hooks around every step; built-ins: timing, PII redaction, cache
    transforms.py  the registered transform functions (the draft-critique-vote ``vote``)
    runner.py      the pure state machine: a step event or a child's result in, actions out
    agent.py       the only module that moves events (no Faust import even there: handlers)

Everything but ``agent.py`` is plain Python: values in, values out.
"""
