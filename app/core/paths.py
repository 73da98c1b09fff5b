"""Where the folders that ship beside the Python code are: `migrations/` (Alembic) and `frontend/`
(the dashboard). In a checkout they are the top-level folders of the repository; in an installed
wheel they are copies under `app/_bundled/` (setup.py's build step puts them there), because a
wheel holds packages, not a repository's top-level folders."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The name the build step gives the copies inside the `app` package (setup.py uses it too).
BUNDLE = "_bundled"


def shipped_dir(name: str) -> Path:
    """The installed copy of the folder `name` if this is an installed wheel, else the checkout's."""
    bundled = Path(str(resources.files("app") / BUNDLE / name))
    return bundled if bundled.is_dir() else REPO_ROOT / name


def migrations_dir() -> Path:
    return shipped_dir("migrations")


def frontend_dir() -> Path:
    return shipped_dir("frontend")
