"""Judge strategies and self-consistency in ``swarmstream bench consensus``: rows ``judge``, ``fuse``,
``vote_then_judge`` and ``self_consistency`` next to the votes, on each bench fleet.

Like the rest of the benchmark this measures decisions, not the pipeline: every model answers
as the live simulated fleet would (``bench/consensus.ask_all``), the judge is shown exactly the
prompt the pipeline would send (``consensus.judging.show`` with the task's shuffle seed, then
``judge_prompt``), answers it exactly as the live fleet does (``simulated.judging.verdict``), and
its reply goes through ``parse_verdict``.

What the simulation can and cannot say: the simulated judge believes what its model would
answer to the task alone and picks the candidate that says so (the first shown when none does);
the simulated fuser writes that answer and reads nothing from the candidates
(``simulated/judging.py``). With the judge among the candidates, ``judge`` and ``fuse`` therefore
score what the judge model scores alone, at the panel's price: these rows measure the plumbing
and the cost, not the gain a real judge gets from reading the candidates (the whole point of a
real one), which no simulation here can show.

The judge and the fuser are the fleet's model with the best published accuracy (a strong
judge, as OpenRouter Fusion and TensorZero recommend); every model of the fleet is a candidate.
``self_consistency``: that same model, :data:`SAMPLES` samples at :data:`TEMPERATURE`, majority
vote. On the independent fleet a model's samples are identical (its answers are a function of
the prompt, as the live fleet's non-correlated models are), so the row shows no gain there by
construction; on helm-mmlu samples are correlated draws (``simulated/correlated.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from swarmstream.agents.consensus.judging import (
    FUSE_SYSTEM,
    JUDGE_SYSTEM,
    fuse_prompt,
    judge_prompt,
    parse_verdict,
    show,
    shuffle_seed,
    split,
)
from swarmstream.agents.consensus.strategies import majority
from swarmstream.agents.consensus.votes import Vote
from swarmstream.agents.models.providers.base import cost_micros
from swarmstream.agents.models.simulated.behaviour import (
    answer_text,
    decide_answer,
    estimate_tokens,
)
from swarmstream.agents.models.simulated.judging import verdict
from swarmstream.agents.models.simulated.taskset import demo_tasks, solve

if TYPE_CHECKING:
    from swarmstream.bench.consensus import Answer
    from swarmstream.bench.fleets import BenchFleet

SAMPLES = 5
TEMPERATURE = 0.7
"""A common self-consistency setting (Wang et al. 2022 sample at 0.5-0.7)."""
FRAMING_TOKENS = 2 * 4
"""A judge call sends two messages (system, user), 4 framing tokens each (as the fleet counts them)."""


def judge_rows(fleet: BenchFleet, *, n_tasks: int, n_warmup: int, seed: int) -> dict[str, dict[str, Any]]:
    """The four rows (accuracy, calls_per_task, cost_per_task_usd, and what each adds) on the tasks
    the other rows are measured on (``bench/consensus.evaluate``'s, after its warm-up tasks)."""
    # imported here: bench.consensus imports this module
    from swarmstream.bench.consensus import TASK_KINDS, TASK_SEED, ask_all

    kinds = TASK_KINDS[fleet.name]
    tasks = demo_tasks(n_warmup + n_tasks, seed=TASK_SEED, kinds=kinds)[n_warmup:]  # type: ignore[arg-type]

    strong = max(fleet.ids, key=lambda m: (fleet.profile(m).accuracy, m))
    spec = fleet.spec(strong)
    totals = {name: [0, 0, 0] for name in ("judge", "fuse", "vote_then_judge", "self_consistency")}  # right, calls, micros
    judged_splits = 0
    for task in tasks:
        truth = solve(task.prompt)
        assert truth is not None
        answers: Mapping[str, Answer] = ask_all(task, seed, fleet)
        candidates_micros = sum(a.cost_micros for a in answers.values())
        vote = majority([Vote(m, a.text) for m, a in answers.items()])
        shown = show([(m, a.text) for m, a in answers.items()], shuffle_seed(task.task_id, None))

        picked, judge_micros, judge_calls = vote.answer, 0, 0
        if len(shown.answers) > 1:
            prompt = judge_prompt(task.prompt, shown)
            own = answers[strong].text  # the live fleet's judge believes its own answer to the task
            reply = verdict(prompt, lambda question, truth, own=own: own) or ""
            picked = shown.answers[parse_verdict(reply, len(shown.answers)).index - 1]
            judge_micros = cost_micros(spec, estimate_tokens(len(prompt) + len(JUDGE_SYSTEM)) + FRAMING_TOKENS,
                                       estimate_tokens(len(reply)))
            judge_calls = 1
        _add(totals["judge"], picked == task.answer, len(answers) + judge_calls, candidates_micros + judge_micros)

        if split(vote.agreement):
            judged_splits += 1
            _add(totals["vote_then_judge"], picked == task.answer, len(answers) + judge_calls,
                 candidates_micros + judge_micros)
        else:
            _add(totals["vote_then_judge"], vote.answer == task.answer, len(answers), candidates_micros)

        fused, fuse_micros, fuse_calls = vote.answer, 0, 0
        if len(shown.answers) > 1:
            prompt = fuse_prompt(task.prompt, shown)
            fused = answers[strong].text  # the live fleet's fuser answers the task it is shown, as alone
            fuse_micros = cost_micros(spec, estimate_tokens(len(prompt) + len(FUSE_SYSTEM)) + FRAMING_TOKENS,
                                      estimate_tokens(len(answer_text(truth.answer_type, fused))))
            fuse_calls = 1
        _add(totals["fuse"], fused == task.answer, len(answers) + fuse_calls, candidates_micros + fuse_micros)

        samples = [_sample(fleet, seed, strong, task.prompt, truth, k) for k in range(SAMPLES)]
        _add(totals["self_consistency"], majority([Vote(f"{strong}#{k}", s) for k, s in enumerate(samples)]).answer
             == task.answer, SAMPLES, SAMPLES * answers[strong].cost_micros)

    n = len(tasks)
    rows = {name: {"accuracy": round(right / n, 4), "calls_per_task": round(calls / n, 3),
                   "cost_per_task_usd": round(micros / n / 1e6, 8)} for name, (right, calls, micros) in totals.items()}
    for name in ("judge", "fuse", "self_consistency"):
        rows[name]["model"] = strong
    rows["vote_then_judge"]["judge_needed_share"] = round(judged_splits / n, 4)
    rows["vote_then_judge"]["saved_vs_judge_usd_per_task"] = round(
        rows["judge"]["cost_per_task_usd"] - rows["vote_then_judge"]["cost_per_task_usd"], 8)
    rows["self_consistency"]["samples"] = SAMPLES
    rows["self_consistency"]["temperature"] = TEMPERATURE
    return rows


def _add(total: list[int], right: bool, calls: int, micros: int) -> None:
    total[0] += right
    total[1] += calls
    total[2] += micros


def _sample(fleet: BenchFleet, seed: int, model: str, prompt: str, truth: Any, k: int) -> str:
    """Sample ``k`` of ``model``, as the live fleet draws it for a task with seed 0 (sample k sends seed k,
    the fleet's sample index is seed + 1); a model without correlated targets answers the same every time."""
    fleet.answers(seed, prompt, truth)  # fits the correlated model once
    fitted = fleet._fitted
    accuracy = fleet.profile(model).accuracy_by_category.get(truth.category, fleet.profile(model).accuracy)
    if fitted is not None and model in fitted:
        return fitted.decide(seed, model, prompt, truth, accuracy, sample=k + 1, temperature=TEMPERATURE).answer
    return decide_answer(seed, model, prompt, truth, accuracy).answer
