"""``swarmstream console``: the people in the loop review, approve and watch in a browser.

A door, like the CLI and the gateway: it reads the topics the workers write with
group-less consumers (``follower.py``), folds them into plain views (``queues.py``,
``trail.py``, ``fleet.py``), serves server-rendered pages (``app.py``, Jinja2
templates) and writes a person's decisions back as events (ReviewDecision and
Feedback, Approval). It holds no state of its own: every console folds the same
logs, so two reviewers see the same queue.
"""
