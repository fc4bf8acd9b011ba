"""One evaluation of a recorded run: every aggregation strategy and every selection policy, side by side.

What ``swarmstream replay`` prints. From one :class:`Recording` (a file, or the
topics read directly), after the labels are chosen (``labels.py``):

* ``strategies``: every consensus strategy re-run on the recorded answers
  (``offline.py``): accuracy, cost, model calls per task, agreement, ECE, and
  the calibration bins behind the ECE (the reliability diagram's bars);
* ``live``: the live results against the replay of the live strategy;
* ``selection``: every selection policy (and ``always:<model>``) estimated
  from the logged propensities of the run's select-mode tasks
  (``counterfactual.py``): IPS, SNIPS and doubly robust estimates of accuracy
  with their intervals, expected cost per task, effective sample size.

Nothing here calls a model: both halves decide from what was recorded with the
same functions the live agents import.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmstream.agents.replay import counterfactual, labels, offline
from swarmstream.agents.replay.recording import Recording
from swarmstream.schemas.models import TaskResult


@dataclass
class Evaluation:
    """The JSON summary, and what it was made from (for the plot and ``--to-topic``)."""

    summary: dict[str, Any]
    replay_set: offline.ReplaySet
    reports: dict[str, offline.StrategyReport]

    def rescored(self) -> list[tuple[str, TaskResult]]:
        return rescored_results(self.replay_set.tasks, self.reports)

    def plot_panels(self) -> dict[str, tuple[Sequence[offline.CalibrationBin], float | None]]:
        return {name: (r.calibration, r.ece) for name, r in self.reports.items() if r.labelled}


def evaluate(
    recording: Recording,
    *,
    label_source: str | Path = "auto",
    strategies: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    weights: offline.Weights = "live",
    stop_threshold: float = offline.STOP_THRESHOLD,
    logging_policies: Collection[str] | None = None,
    seed: int = 0,
) -> Evaluation:
    """Label ``recording`` from ``label_source`` (``labels.apply_labels``), then replay it
    (module docstring). ``targets``: counterfactual targets (default: every policy and
    ``always:<model>``); ``logging_policies``: only selections logged by these."""
    label_counts = labels.apply_labels(recording, label_source)
    replay_set = offline.ReplaySet.from_recording(recording, weights=weights, stop_threshold=stop_threshold)
    tasks = replay_set.tasks
    reports = replay_set.run_all(strategies) if tasks else {}
    summary: dict[str, Any] = {
        "tasks": len(tasks),
        "labelled": sum(t.label is not None for t in tasks),
        "responses": recording.response_count,
        "weights": weights,
        "labels": {"source": str(label_source), "from": label_counts,
                   "known_wrong_only": sum(1 for t in tasks if t.label is None and t.wrong)},
        "strategies": {name: {**r.to_dict(), "calibration": [
            [b.low, b.high, b.count, round(b.mean_confidence, 6), round(b.accuracy, 6)] for b in r.calibration]}
            for name, r in reports.items()},
    }
    if any(t.live is not None for t in tasks):
        summary["live"] = offline.compare_with_live(recording, weights=weights, replayed=reports.get(offline.DEFAULT)
                                                    ).to_dict()
    if recording.selections:
        summary["selection"] = counterfactual.counterfactual_summary(
            recording, targets, seed=seed, logging_policies=logging_policies)
    if recording.skipped:
        summary["skipped_kinds"] = dict(recording.skipped)
    return Evaluation(summary, replay_set, reports)


def rescored_results(tasks: Sequence[offline.ReplayTask],
                     reports: Mapping[str, offline.StrategyReport]) -> list[tuple[str, TaskResult]]:
    """Each strategy's decision of each task as a TaskResult (``reason`` says it is a replay),
    for ``--to-topic``: downstream consumers compare them with the live ones by task id."""
    by_id = {t.task_id: t for t in tasks}
    out: list[tuple[str, TaskResult]] = []
    for name, report in reports.items():
        for task_id, decision in report.decisions.items():
            task = by_id[task_id]
            out.append((name, TaskResult(
                task_id=task_id,
                status="ok" if decision.answer is not None else "failed",
                mode="consensus",
                answer=decision.answer,
                agreement=decision.agreement,
                confidence=decision.confidence,
                strategy=name,
                models_asked=decision.calls,
                cost_micros=decision.cost_micros,
                created_ms=task.created_ms,
                completed_ms=task.live.completed_ms if task.live is not None else task.created_ms,
                reason=f"replay of strategy {name}" + ("" if decision.correct is None
                                                        else f"; {'right' if decision.correct else 'wrong'}"),
            )))
    return out


def render(summary: Mapping[str, Any]) -> str:
    """The strategies table (``offline.render``), then the selection policies table."""
    lines = [offline.render(summary)]
    label_info = summary.get("labels")
    if label_info:
        sources = ", ".join(f"{k} {v}" for k, v in label_info["from"].items()) or "none"
        lines.append(f"  labels: {label_info['source']} ({sources})")
    selection = summary.get("selection")
    if selection:
        logged = ", ".join(f"{k} {v}" for k, v in selection["logged_policies"].items()) or "-"
        lines.append(f"selection policies, estimated from {selection['events']} logged selections "
                     f"(logged by: {logged}); mean reward with 95% intervals, no model called:")
        lines.append(f"  {'policy':<26}{'ips':>7}{'interval':>16}{'dr':>7}{'interval':>16}{'snips':>7}"
                     f"{'cost $/task':>13}{'ess':>8}")

        def iv(pair: list[float] | None) -> str:
            return "-" if pair is None else f"[{pair[0]:.3f},{pair[1]:.3f}]"

        def num(value: float | None, spec: str = ".3f") -> str:
            return "-" if value is None else format(value, spec)

        for name, e in selection["targets"].items():
            lines.append(f"  {name:<26}{num(e['ips']):>7}{iv(e['ips_interval']):>16}{num(e['dr']):>7}"
                         f"{iv(e['dr_interval']):>16}{num(e['snips']):>7}{num(e['cost_usd_per_task'], '.6f'):>13}"
                         f"{e['effective_sample_size']:>8.0f}")
    return "\n".join(lines)
