"""``swarmstream demo --fleet helm-mmlu``: the demo end to end on models that err like real ones."""

from __future__ import annotations

from swarmstream.agents.models.simulated.presets import load_preset
from swarmstream.streams.cli.main import main


async def test_the_demo_runs_on_the_helm_mmlu_fleet(broker_url, monkeypatch) -> None:
    from swarmstream.streams.cli.demo import render, run_demo

    monkeypatch.setenv("SWARM_BROKER", broker_url)
    summary = await run_demo(tasks=8, mode="consensus", quiet=True, fleet="helm-mmlu")

    assert (summary["results"], summary["statuses"]) == (8, {"ok": 8})
    preset = load_preset("helm-mmlu")
    assert set(summary["model_accuracy"]) == set(preset.default_consensus)  # the real models answered
    assert summary["cost_usd"] > 0  # at their list prices
    assert "claude-3-5-sonnet-20240620" in render(summary)


def test_an_unknown_fleet_is_refused_before_anything_starts(capsys) -> None:
    assert main(["demo", "--fleet", "no-such-fleet", "--tasks", "1"]) == 2
    error = capsys.readouterr().err
    assert "no-such-fleet" in error and "helm-mmlu" in error
