"""The `focalscope` command line from a test, on a fresh SQLite database in the test's data directory.

`cli` runs the command in this process (argument parsing, handlers, messages and exit status are the
same code as the entry point, without a Python start-up per command); `cli_process` runs the installed
entry point in a subprocess, for the tests that are about the process itself.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from focalscope.cli import main

REPO = Path(__file__).resolve().parents[2]
ENV_VARIABLES = ("DATABASE_URL", "FOCALSCOPE_DATABASE_URL", "FOCALSCOPE_DATA_DIR")


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run `focalscope --data-dir tmp_path/data ARGS...` in this process, check its exit status
    (expect=) and that it logged no traceback; returns an object with returncode, stdout and stderr. An
    exception that escapes the command fails the test (where the entry point would print a traceback)."""
    for variable in ENV_VARIABLES:
        monkeypatch.delenv(variable, raising=False)

    def run(*args: str, expect: int = 0) -> SimpleNamespace:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        capsys.readouterr()
        try:
            status = main(["--data-dir", str(tmp_path / "data"), *args])
        except SystemExit as exited:  # argparse: usage errors and --help
            status = exited.code
        finally:  # main() configures logging on the captured stream of this test: undo it
            root.handlers[:], root.level = handlers, level
        out, err = capsys.readouterr()
        result = SimpleNamespace(returncode=status or 0, stdout=out, stderr=err)
        assert result.returncode == expect, f"exit {result.returncode}\n{out}\n{err}"
        assert "Traceback" not in err
        return result

    return run


@pytest.fixture
def cli_process(tmp_path, monkeypatch):
    """Run `python -m focalscope --data-dir tmp_path/data ARGS...` as a subprocess, check its exit
    status (expect=) and that it printed no traceback; returns the CompletedProcess."""
    for variable in ENV_VARIABLES:
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
