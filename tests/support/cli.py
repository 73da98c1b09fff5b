"""The `focalscope` command line from a test: the installed entry point in a subprocess, on a fresh
SQLite database in the test's data directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run `python -m focalscope --data-dir tmp_path/data ARGS...`, check its exit status (expect=)
    and that it printed no traceback; returns the CompletedProcess."""
    for variable in ("DATABASE_URL", "FOCALSCOPE_DATABASE_URL", "FOCALSCOPE_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "focalscope", "--data-dir", str(tmp_path / "data"), *args],
            capture_output=True, text=True, timeout=300, cwd=REPO,
        )
        assert result.returncode == expect, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result

    return run
