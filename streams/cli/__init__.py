"""The commands people run (``swarmstream ...``) and the views they print: the CLI, the demo,
the live dashboards, the recorder and the AsyncAPI document."""

from swarmstream.streams.cli.main import main

__all__ = ["main"]
