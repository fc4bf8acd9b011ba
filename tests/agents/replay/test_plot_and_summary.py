"""The reliability diagram PNG, the side-by-side summary (strategies and policies), re-scored results."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from swarmstream.agents.replay import plot
from swarmstream.agents.replay.offline import CalibrationBin, calibration_bins
from swarmstream.agents.replay.recording import Label, Recording
from swarmstream.agents.replay.summary import evaluate, render
from swarmstream.schemas.models import (
    Feedback,
    ScoredCandidate,
    SelectionEvent,
    TaskResult,
)

from tests.agents.replay.test_offline_replay import answer, hand_made, task


def decode_png(data: bytes) -> np.ndarray:
    """A minimal reader for what png_bytes writes (8-bit RGB, filter 0), checking every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 2) and b"IEND" in chunks
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, 1 + width * 3)
    assert not rows[:, 0].any()  # filter type 0 on every row
    return rows[:, 1:].reshape(height, width, 3)


def test_png_round_trip() -> None:
    img = np.random.default_rng(1).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(plot.png_bytes(img)), img)
    with pytest.raises(ValueError, match="height x width x 3"):
        plot.png_bytes(np.zeros((4, 4), dtype=np.uint8))


def test_reliability_diagram_draws_a_bar_per_bin(tmp_path: Path) -> None:
    bins = calibration_bins([0.95, 0.95, 0.15, 0.15], [True, True, True, False])  # accuracy 1.0 and 0.5
    path = plot.write_reliability_png(tmp_path / "out" / "r.png", {"majority": (bins, 0.2), "weighted": ([], None)})
    img = decode_png(path.read_bytes())
    assert img.shape == (plot.PANEL_PX, 2 * plot.PANEL_PX, 3)
    ox, bottom = plot.MARGIN_PX, plot.MARGIN_PX + plot.PLOT_PX

    def colour_at(confidence: float, height: float) -> tuple[int, ...]:
        return tuple(img[bottom - 1 - round(height * plot.PLOT_PX), ox + round(confidence * plot.PLOT_PX)])

    assert colour_at(0.95, 0.5) == plot.BLUE  # the 0.9-1.0 bin: accuracy 1.0, a full bar
    assert colour_at(0.15, 0.1) == plot.BLUE  # the 0.1-0.2 bin: accuracy 0.5, half a bar...
    blend = tuple((b + r) // 2 for b, r in zip(plot.BLUE, plot.RED, strict=True))
    assert colour_at(0.15, 0.35) == blend  # ...shaded red between its confidence (0.15) and accuracy (0.5)...
    assert colour_at(0.15, 0.75) == plot.WHITE  # ...and nothing above it
    assert colour_at(0.55, 0.25) == plot.WHITE  # an empty bin draws nothing


def with_selections() -> Recording:
    rec = hand_made()
    for i in range(40):  # a random logger over two models: a always right, b always wrong
        task_id, chosen = f"s{i}", "ab"[i % 2]
        rec.add(SelectionEvent(task_id=task_id, tenant="default", category="c", policy="random", status="selected",
                               chosen=chosen, at_ms=10_000 + i, candidates=[
                                   ScoredCandidate(model_id="a", score=0.5, propensity=0.5, cost_micros_est=300),
                                   ScoredCandidate(model_id="b", score=0.5, propensity=0.5, cost_micros_est=100)]))
        given = "right" if chosen == "a" else "wrong"
        rec.add(task(task_id, mode="select", models=[]))
        rec.add(answer(task_id, chosen, given))
        rec.add(TaskResult(task_id=task_id, status="ok", mode="select", answer=given, answered_by=chosen))
        if i < 20:
            rec.add(Label(task_id, "right"))
        else:  # the rest judged by feedback only
            rec.add(Feedback(task_id=task_id, created_ms=1, score=1.0 if chosen == "a" else 0.0))
    return rec


def test_summary_has_strategies_and_policies_side_by_side() -> None:
    evaluation = evaluate(with_selections())
    summary = evaluation.summary
    assert summary["tasks"] == 6 and summary["labelled"] == 5
    for numbers in summary["strategies"].values():
        assert {"accuracy", "cost_usd", "calls_per_task", "ece", "agreement", "calibration"} <= set(numbers)
    assert summary["strategies"]["majority"]["accuracy"] == pytest.approx(4 / 5)  # as in test_offline_replay
    selection = summary["selection"]
    assert selection["events"] == 40 and selection["logged_policies"] == {"random": 40}
    targets = selection["targets"]
    assert targets["always:a"]["ips"] == pytest.approx(1.0) and targets["always:b"]["ips"] == pytest.approx(0.0)
    assert targets["always:a"]["cost_usd_per_task"] == pytest.approx(300e-6)
    assert targets["random"]["cost_usd_per_task"] == pytest.approx(200e-6)
    assert targets["random"]["snips"] == pytest.approx(0.5)
    text = render(summary)
    assert "majority" in text and "always:a" in text and "thompson" in text and "labels: auto" in text
    assert set(evaluation.plot_panels()) == {name for name, s in summary["strategies"].items() if s["labelled"]}


def test_rescored_results_carry_each_strategy_decision() -> None:
    evaluation = evaluate(with_selections(), strategies=["majority", "early_stop"])
    rescored = evaluation.rescored()
    assert len(rescored) == 2 * evaluation.summary["tasks"]
    by_key = {(name, r.task_id): r for name, r in rescored}
    t2 = by_key[("majority", "t2")]
    assert (t2.answer, t2.strategy, t2.models_asked, t2.status) == ("y", "majority", 3, "ok")
    assert "replay of strategy majority; wrong" == t2.reason
    assert by_key[("majority", "t7")].reason == "replay of strategy majority"  # unlabelled: not judged


def test_a_recording_without_selections_has_no_selection_part() -> None:
    assert "selection" not in evaluate(hand_made()).summary


def test_bins_are_in_the_json() -> None:
    summary = evaluate(hand_made()).summary
    bins = [CalibrationBin(*row) for row in summary["strategies"]["majority"]["calibration"]]
    assert sum(b.count for b in bins) == summary["strategies"]["majority"]["labelled"]
