"""The package installs whole: a wheel built from the repository holds migrations/ and frontend/, and
focalscope installed from it — in a fresh virtualenv, the source tree nowhere on the path, run from
a directory outside it — migrates a new database and serves the dashboard and the API."""

from __future__ import annotations

import os
import shutil
import signal
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from app.db.migrate import head_revision
from tests.support.browser import free_port
from tests.support.packaging import WHEEL_SOURCES
from tests.support.timing import wait_until

REPO = Path(__file__).resolve().parents[1]
SERVER_START_TIMEOUT_S = 30


def _copy_sources(target: Path) -> None:
    """The build runs on a copy: setuptools writes build/ and *.egg-info into the folder it builds."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_bundled")
    target.mkdir()
    for name in WHEEL_SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """focalscope built as a wheel and installed with --target; the interpreter and environment that
    run it: a fresh venv's python with only the target and the dependencies on its path."""
    root = tmp_path_factory.mktemp("wheel")
    _copy_sources(root / "src")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), "."],
                   cwd=root / "src", check=True, capture_output=True)
    wheel = next((root / "dist").glob("focalscope-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(root / "target"), str(wheel)], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    # The dependencies from the development venv's site-packages, listed on PYTHONPATH: its .pth
    # files (the editable install that points at the checkout among them) are not read from there.
    path = os.pathsep.join([str(root / "target"), *site.getsitepackages()])
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FOCALSCOPE_") and k != "DATABASE_URL"}
    env.update(PYTHONPATH=path, PYTHONNOUSERSITE="1")
    outside = root / "elsewhere"
    outside.mkdir()
    return {"wheel": wheel, "python": str(root / "venv" / "bin" / "python"), "env": env, "cwd": outside,
            "target": root / "target"}


def _focalscope(installed: dict, *args: str) -> list[str]:
    return [installed["python"], "-m", "focalscope", "--data-dir", str(installed["cwd"] / "data"), *args]


def test_the_wheel_holds_the_migrations_and_the_frontend(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    revisions = {p.name for p in (REPO / "migrations" / "versions").glob("*.py")}
    assert {f"app/_bundled/migrations/versions/{name}" for name in revisions} <= names
    assert {"app/_bundled/migrations/env.py", "app/_bundled/migrations/script.py.mako",
            "app/_bundled/frontend/index.html", "app/_bundled/frontend/js/app.js",
            "app/_bundled/frontend/vendor/plotly-strict.min.js"} <= names
    assert not any("__pycache__" in name for name in names)


def test_the_installed_package_migrates_and_serves_from_outside_the_source_tree(installed):
    where = subprocess.run(
        [installed["python"], "-c", "import app, focalscope; print(app.__file__); print(focalscope.__file__)"],
        env=installed["env"], cwd=installed["cwd"], capture_output=True, text=True, check=True,
    )
    assert all(line.startswith(str(installed["target"])) for line in where.stdout.split()), where.stdout

    upgraded = subprocess.run(_focalscope(installed, "db", "upgrade"), env=installed["env"], cwd=installed["cwd"],
                              capture_output=True, text=True, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"database at revision {head_revision()}"

    port = free_port()
    server = subprocess.Popen(_focalscope(installed, "serve", "--port", str(port), "--workers", "0"),
                              env=installed["env"], cwd=installed["cwd"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        health = wait_until(lambda: _get(f"http://127.0.0.1:{port}/api/v1/health"),
                            timeout=SERVER_START_TIMEOUT_S, what="the installed server's health")
        assert health.json()["status"] == "ok" and health.json()["database"] == "sqlite"
        index = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert index.status_code == 200 and "<title>focalscope" in index.text
        script = httpx.get(f"http://127.0.0.1:{port}/static/js/app.js", timeout=5)
        assert script.status_code == 200 and "import" in script.text
        plotly = httpx.get(f"http://127.0.0.1:{port}/vendor/plotly-strict.min.js", timeout=5)
        assert plotly.status_code == 200 and "plotly.js (strict" in plotly.text[:200]
    finally:
        os.killpg(server.pid, signal.SIGINT)
        output, _ = server.communicate(timeout=20)
    assert b"Traceback" not in output, output.decode(errors="replace")


def _get(url: str):
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response if response.status_code == 200 else None
