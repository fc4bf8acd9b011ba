"""Named simulated fleets: a catalog file each, shipped with the package.

    independent   agents/models/models.yaml: five demo models, mistakes independent
    helm-mmlu     helm_mmlu.yaml: eight real models' published MMLU accuracies and pairwise
                  error statistics (Kim et al., ICML 2025), their list prices and latencies

``--fleet NAME`` on the demo and the decision benchmarks picks one; a path to a catalog file
works wherever a name does.
"""

from __future__ import annotations

from pathlib import Path

from swarmstream.agents.models.catalog import (
    DEFAULT_CATALOG_PATH,
    Catalog,
    load_catalog,
)

PRESETS: dict[str, Path] = {
    "independent": DEFAULT_CATALOG_PATH,
    "helm-mmlu": Path(__file__).with_name("helm_mmlu.yaml"),
}


def preset_path(fleet: str) -> Path:
    """The catalog file of a preset name, or ``fleet`` itself when it names an existing file."""
    if fleet in PRESETS:
        return PRESETS[fleet]
    path = Path(fleet)
    if path.is_file():
        return path
    raise ValueError(f"unknown fleet {fleet!r}: expected one of {', '.join(PRESETS)} or a catalog file")


def load_preset(fleet: str, *, sim_url: str | None = None) -> Catalog:
    return load_catalog(preset_path(fleet), sim_url=sim_url)
