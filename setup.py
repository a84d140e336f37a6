"""The one build step pyproject.toml cannot state: the wheel's copies of the sources the constructs
read at synth from outside ``infra/`` (the runner's asset, the agent, the pins), made from
``infra/bundled.py``'s table when the wheel is built."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED: dict[str, str] = runpy.run_path(str(ROOT / "infra" / "bundled.py"))["BUNDLED"]
CONSTRUCTS_PACKAGE = "ecr_fleet_auth_cdk"
NEVER_SHIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", "*.egg-info")


class BuildWithBundledSources(build_py):
    """build_py, then each bundled source copied into the constructs' package (not for an editable
    install: there the constructs read the repository's own folders)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for name, source in BUNDLED.items():
            origin, target = ROOT / source, Path(self.build_lib, CONSTRUCTS_PACKAGE, name)
            if target.is_dir():
                shutil.rmtree(target)
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=NEVER_SHIPPED)
            else:
                shutil.copyfile(origin, target)


setup(cmdclass={"build_py": BuildWithBundledSources})
