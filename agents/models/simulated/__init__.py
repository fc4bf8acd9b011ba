"""The simulated provider: fake models on loopback HTTP (OpenAI and Anthropic protocols)
answering a labelled demo task set with configurable accuracy, latency and failures.
It drives the demo, the tests and the benchmarks (DESIGN.md "Models")."""

from .fleet import OUTCOMES, SimFleet, serve_forever
from .profile import FAILURE_CLASSES, SCRIPT_STEPS, SimProfile
from .prompts import understand
from .taskset import (
    LabelledTask,
    Truth,
    demo_tasks,
    extract_answer,
    normalise_answer,
    solve,
)

__all__ = [
    "FAILURE_CLASSES",
    "OUTCOMES",
    "SCRIPT_STEPS",
    "LabelledTask",
    "SimFleet",
    "SimProfile",
    "Truth",
    "demo_tasks",
    "extract_answer",
    "normalise_answer",
    "serve_forever",
    "solve",
    "understand",
]
