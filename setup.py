"""Build step that pyproject.toml cannot declare: copy the top-level `migrations/` and `frontend/`
folders into the wheel as `app/_bundled/…` (app/core/paths.py finds them there), so that an
installed focalscope can migrate its database and serve its dashboard. The repository keeps them at
the top level, where Alembic and a browser-facing checkout expect them."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED_FOLDERS = ("migrations", "frontend")
BUNDLE = Path("app") / "_bundled"  # app.core.paths.BUNDLE


class BuildWithShippedFolders(build_py):
    def run(self):
        super().run()
        for name in SHIPPED_FOLDERS:
            target = Path(self.build_lib) / BUNDLE / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithShippedFolders})
