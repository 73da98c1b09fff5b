"""A worker's own Prometheus metrics, served on `--metrics-port` (one port per worker process):
what this process has done since it started. The queue as a whole (jobs by status, queue age) is
the API's /metrics, read from the database."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, start_http_server

from app.vocab import KIND_SCORE

# How a claimed job ended for this worker (see Worker._settle).
OUTCOMES = ("done", "interrupted", "lost", "failed")


class WorkerMetrics:
    def __init__(self, *, worker: str, device: str):
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # RSS, CPU seconds, open files
        info = Gauge("focalscope_worker_info", "This worker's name and device (value 1).", ("worker", "device"),
                     registry=self.registry)
        info.labels(worker=worker, device=device).set(1)
        self.jobs = Counter("focalscope_worker_jobs", "Jobs this worker claimed, by kind and how they ended.",
                            ("kind", "outcome"), registry=self.registry)
        self.shards_done = Counter("focalscope_worker_shards_done", "Score shards this worker committed.",
                                   registry=self.registry)
        self.tokens_scored = Counter("focalscope_worker_tokens_scored",
                                     "Tokens in the shards this worker committed; rate() gives tokens per second.",
                                     registry=self.registry)
        self.busy = Gauge("focalscope_worker_jobs_held", "Jobs this worker holds now.", registry=self.registry)

    def claimed(self) -> None:
        self.busy.inc()

    def settled(self, *, kind: str, outcome: str, tokens: int) -> None:
        self.busy.dec()
        self.jobs.labels(kind=kind, outcome=outcome).inc()
        if kind == KIND_SCORE and outcome == "done":
            self.shards_done.inc()
            self.tokens_scored.inc(tokens)

    def serve(self, port: int, host: str) -> int:
        """Serve /metrics on a daemon thread; returns the port (port 0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port
