"""A task's step keys: which model, which sample of it, and in what role.

A consensus task's state keys its answers and failures by *slot*: the step a model
call fills. Before self-consistency and judges a slot was the model id, and it still
is for a candidate's first sample, so states, done records and sweeps written before
keep their meaning. Other slots append a suffix the model id cannot collide with in
practice (``#`` appears in no provider's model names):

    gpt-4o          candidate, sample 0
    gpt-4o#3        candidate, sample 3 (self-consistency: ``TaskRequest.samples``)
    gpt-4o#judge    the judge phase's call of gpt-4o (``judging.py``)
    gpt-4o#fuse     the fuse phase's call of gpt-4o

The deadline sweeper turns a missing slot into a Failure whose ``model_id`` is the slot
key itself (with sample 0, role candidate): :func:`slot_of` reads it back to the same
key, so a swept step ends the step it stands for. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from swarmstream.schemas.models import StepContext

SEPARATOR = "#"
ROLES = ("judge", "fuse")


@dataclass(frozen=True)
class Slot:
    model_id: str
    sample: int = 0
    role: str = "candidate"

    @property
    def key(self) -> str:
        if self.role != "candidate":
            return f"{self.model_id}{SEPARATOR}{self.role}"
        return self.model_id if self.sample == 0 else f"{self.model_id}{SEPARATOR}{self.sample}"


def parse_slot(key: str) -> Slot:
    """The slot a key names; a key without a known suffix is a model's first sample."""
    model, sep, suffix = key.rpartition(SEPARATOR)
    if not sep or not model:
        return Slot(key)
    if suffix in ROLES:
        return Slot(model, role=suffix)
    if suffix.isdigit():
        return Slot(model, sample=int(suffix))
    return Slot(key)


def slot_of(step: StepContext) -> Slot:
    """The slot an outcome fills: its step's own sample and role, or, for a swept outcome whose
    ``model_id`` is a slot key, the slot that key names."""
    if step.sample or step.role != "candidate":
        return Slot(step.model_id, step.sample, step.role)
    return parse_slot(step.model_id)


def candidate_slots(models: Iterable[str], samples: int) -> list[str]:
    """Every candidate slot of ``models`` with ``samples`` calls each, round by round: every model's
    first sample, then every model's second, ... An early-stop batch (the first slots of this order)
    then asks different models before a second sample of any: a model's samples err alike, so three
    samples of one model agreeing would settle a vote on far less evidence than three models."""
    models = list(models)
    return [Slot(model, sample).key for sample in range(max(1, samples)) for model in models]


def model_of(key: str) -> str:
    return parse_slot(key).model_id
