"""Maps the top-level folders onto one installed name, `swarmstream.<folder>`.

Why not `packages.find`: it cannot rename folders, and a plain `agents` or
`schemas` package in a user's site-packages would clash with other projects.
"""

from pathlib import Path

from setuptools import setup

FOLDERS = ("streams", "agents", "schemas", "bench")
HERE = Path(__file__).parent

package_dir: dict[str, str] = {}
for folder in FOLDERS:
    for init in sorted((HERE / folder).rglob("__init__.py")):
        rel = init.parent.relative_to(HERE)
        package_dir["swarmstream." + ".".join(rel.parts)] = str(rel)

setup(
    packages=list(package_dir),
    package_dir=package_dir,
    package_data={
        "swarmstream.schemas": ["*.avsc"],
        "swarmstream.agents.models": ["*.yaml"],
        "swarmstream.agents.models.simulated": ["*.yaml"],  # presets: helm_mmlu.yaml
        "swarmstream.agents.fallback": ["*.yaml"],
        "swarmstream.agents.tools": ["*.yaml"],
        "swarmstream.agents.workflows": ["*.yaml"],
        "swarmstream.streams.console": ["templates/*.html", "static/*.css", "static/*.js"],
    },
)
