"""Replay: recorded topics in, strategies and policies evaluated offline, no model call.

Everything here is pure (no Faust, no broker; ``streams/cli/recorder.py`` reads the topics):

- ``recording``: the recording file (JSON Lines, one record per line, gzip by suffix),
  ``write_recording`` / ``read_recording``;
- ``offline``: every consensus strategy re-run on the recorded answers with the live
  join's own functions (``replay``, ``replay_summary``, ``compare_with_live``), with
  accuracy, cost, calls per task and calibration (ECE);
- ``counterfactual``: inverse propensity estimates (IPS, SNIPS, doubly robust) of other
  selection policies from the logged selection propensities.
"""
