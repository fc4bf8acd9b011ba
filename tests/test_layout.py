"""DESIGN.md's "Layout" names only folders and files that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def layout_paths() -> list[str]:
    """Each entry of the Layout section's tree, as a path: a line's first word, under the
    folder of the nearest line indented less."""
    design = (REPO / "DESIGN.md").read_text(encoding="utf-8")
    section = design[design.index("## Layout"):]
    block = section[section.index("```") + 3:]
    block = block[:block.index("```")]
    paths: list[str] = []
    stack: list[tuple[int, str]] = []
    for line in block.strip("\n").splitlines():
        indent = len(line) - len(line.lstrip())
        name = line.split()[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "/".join([folder for _, folder in stack] + [name.rstrip("/")])
        paths.append(path)
        if name.endswith("/"):
            stack.append((indent, name.rstrip("/")))
    return paths


def test_every_path_the_layout_names_exists() -> None:
    paths = layout_paths()
    assert "streams/engine" in paths and "agents/consensus" in paths  # the parser read the tree
    missing = [path for path in paths if not (REPO / path).exists()]
    assert not missing, f"DESIGN.md's Layout names what the tree lacks: {missing}"


def test_every_folder_of_streams_and_agents_is_named() -> None:
    named = set(layout_paths())
    folders = [f"{top}/{child.name}" for top in ("streams", "agents") for child in (REPO / top).iterdir()
               if child.is_dir() and (child / "__init__.py").exists()]
    unnamed = [folder for folder in folders if folder not in named]
    assert not unnamed, f"folders missing from DESIGN.md's Layout: {unnamed}"
    assert re.search(r"streams/engine", " ".join(named))
