"""A PostgreSQL server of the test's own, so that a test can stop and start it without touching the
shared server the other tests use: initdb into a temporary directory (as the `postgres` user when
run as root, since the server refuses to run as root), trust auth, a free port, a socket in its dir.
The directory is a fresh one under the system's temporary directory: pytest's own are private to
root, and the `postgres` user could not enter them."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.timing import wait_until


def _postgres_bin() -> Path | None:
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if versions:
        return Path(versions[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivatePostgres:
    def __init__(self, directory: Path):
        self.bin = _postgres_bin()
        self.directory = directory
        self.data = directory / "pgdata"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{tool} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.directory / "server.log"), "-w", "start")
        wait_until(self._accepts, what="the private PostgreSQL server to accept connections")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def _accepts(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0


@pytest.fixture
def private_postgres():
    """A started PrivatePostgres, stopped and removed after the test."""
    if _postgres_bin() is None:
        pytest.skip("needs PostgreSQL's server binaries (initdb, pg_ctl)")
    directory = Path(tempfile.mkdtemp(prefix="focalscope-pg-"))
    try:
        server = PrivatePostgres(directory)
        server.start()
        try:
            yield server
        finally:
            if server._accepts():
                server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
