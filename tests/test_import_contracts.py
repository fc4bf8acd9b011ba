"""The import contracts of ``pyproject.toml`` ([tool.importlinter]) hold.

The folders install under one name (``swarmstream.<folder>``, setup.py's ``package-dir``),
which a tool that reads the tree cannot see: import-linter finds a package by walking its
folder, and the editable install's ``swarmstream`` has none. So the test mirrors the Python
files of those folders under ``<tmp>/swarmstream/`` and runs ``lint-imports`` there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("streams", "agents", "schemas", "bench")  # setup.py's FOLDERS


def mirror(root: Path) -> None:
    package = root / "swarmstream"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for folder in FOLDERS:
        for source in (REPO / folder).rglob("*.py"):
            target = package / source.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(script), str(REPO / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_import_contracts_hold(tmp_path: Path) -> None:
    mirror(tmp_path)
    done = lint_imports(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_a_forbidden_import_breaks_them(tmp_path: Path) -> None:
    """The check can fail: the engine importing a capability is caught."""
    mirror(tmp_path)
    tables = tmp_path / "swarmstream" / "streams" / "engine" / "tables.py"
    tables.write_text(tables.read_text() + "\nfrom swarmstream.agents.taskstate import DoneRecord  # noqa\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "swarmstream.streams.engine.tables -> swarmstream.agents.taskstate" in done.stdout
