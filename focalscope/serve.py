"""`focalscope serve`: the API and dashboard in this process, workers as child processes.

Workers are separate processes (not threads) so that a model's memory and a crash stay out of the
API, and so that Ctrl-C reaches them too: each releases its job and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading

from app.core.config import Settings

log = logging.getLogger("focalscope.serve")
# A worker asked to stop finishes its current batch first; on a CPU that can take a few seconds.
WORKER_STOP_TIMEOUT_S = 20
WORKER_WATCH_INTERVAL_S = 5


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def worker_command(device: str, index: int) -> list[str]:
    return [sys.executable, "-m", "workers", "--device", device, "--name", f"{socket.gethostname()}:serve-{index}:{device}"]


def worker_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["FOCALSCOPE_DATA_DIR"] = str(settings.data_dir)
    env["FOCALSCOPE_DATABASE_URL"] = settings.db_url
    env["FOCALSCOPE_LOG_FORMAT"] = settings.log_format
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class WorkerPool:
    """Child worker processes, restarted if one dies while the server runs."""

    def __init__(self, settings: Settings, count: int, device: str):
        self.settings, self.count, self.device = settings, count, device
        self.processes: list[subprocess.Popen] = []
        self.stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self.processes = [self._spawn(i) for i in range(self.count)]
        self._watcher.start()

    def _spawn(self, index: int) -> subprocess.Popen:
        return subprocess.Popen(worker_command(self.device, index), env=worker_env(self.settings))

    def _watch(self) -> None:
        while not self.stopping.wait(WORKER_WATCH_INTERVAL_S):
            for index, process in enumerate(self.processes):
                if process.poll() is not None and not self.stopping.is_set():
                    log.warning("worker %d exited with status %s; restarting it", index, process.returncode)
                    self.processes[index] = self._spawn(index)

    def stop(self) -> None:
        self.stopping.set()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _quiet_server(config):
    """A uvicorn server that ends on Ctrl-C like any other shutdown. (uvicorn re-raises the signal
    after its graceful shutdown, which turns a clean stop into a KeyboardInterrupt traceback.)"""
    import uvicorn

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return QuietServer(config)


def unprotected_refusal(settings: Settings) -> str | None:
    """Why the server must not start as configured, or None: bound beyond loopback, it needs an admin
    token to exist (someone must be able to use it) or an explicit --insecure-open."""
    from app.db.engine import make_engine, make_sessionmaker
    from app.services import tokens

    if settings.loopback_bound or settings.insecure_open:
        return None
    engine = make_engine(settings.db_url)
    try:
        with make_sessionmaker(engine)() as session:
            if tokens.has_admin_token(session=session):
                return None
    finally:
        engine.dispose()
    return (f"--host {settings.host} can be reached from other machines, and no admin token exists. Create one "
            f"with `focalscope token create --scope admin --name NAME` (then tokens for the others), or start with "
            f"--insecure-open to let anyone who reaches the port read and change everything.")


def access_line(settings: Settings) -> str:
    if settings.open_access:
        return "open: no token needed" + (" (--insecure-open)" if not settings.loopback_bound else " (loopback)")
    return "tokens required" + (" for writes; reads are public" if settings.public_read else "")


def serve(settings: Settings, *, workers: int, device: str) -> int:
    import uvicorn

    from app.db import migrate
    from app.main import create_app

    if not port_free(settings.host, settings.port):
        print(f"error: {settings.host}:{settings.port} is already in use; choose another with --port", file=sys.stderr)
        return 1
    if settings.auto_migrate:
        migrate.upgrade(settings.db_url)
    if (refusal := unprotected_refusal(settings)) is not None:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    pool = WorkerPool(settings, workers, device)
    pool.start()
    print(f"\n  focalscope is serving http://{settings.host}:{settings.port}   (Ctrl-C stops it)"
          f"\n  access: {access_line(settings)}\n", flush=True)
    try:
        app = create_app(settings)
        # lifespan="off": the app's only shutdown work is disposing its engine (done below), and a
        # lifespan task cancelled by a second Ctrl-C would print a traceback.
        # log_config=None: uvicorn's own messages go through this process's handler (text or JSON);
        # requests are logged by the app's access log (app/api/observability.py), not uvicorn's.
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", lifespan="off",
                                log_config=None, access_log=False)
        _quiet_server(config).run()
        app.state.engine.dispose()
    finally:
        print("stopping workers...", file=sys.stderr, flush=True)
        pool.stop()
    return 0
