"""What the API tells operators: Prometheus metrics (a registry per app, nothing global) and an
access log, both from one pure ASGI middleware that times every request.

Requests are labelled by their route template (`/api/v1/runs/{run_id}`), never the raw path: one
time series per route, however many runs there are.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.base import utcnow
from app.services.queue_metrics import queue_metrics

access_log = logging.getLogger("focalscope.access")
UNMATCHED_ROUTE = "(unmatched)"


class QueueCollector:
    """Queue metrics read from the database at each scrape (see app.services.queue_metrics)."""

    def __init__(self, sessions: sessionmaker[Session], now=utcnow):
        self.sessions, self.now = sessions, now

    def collect(self):
        up = GaugeMetricFamily("focalscope_database_up", "1 when the database answered this scrape.")
        try:
            with self.sessions() as session:
                numbers = queue_metrics(session=session, now=self.now())
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("focalscope_jobs", "Jobs by kind and status.", labels=("kind", "status"))
        for (kind, status), count in sorted(numbers.jobs.items()):
            jobs.add_metric([kind, status], count)
        yield jobs
        yield CounterMetricFamily("focalscope_shards_done", "Score shards done.", value=numbers.shards_done)
        yield CounterMetricFamily("focalscope_tokens_scored", "Tokens in done score shards; rate() gives tokens per second.",
                                  value=numbers.tokens_scored)
        yield GaugeMetricFamily("focalscope_queue_oldest_age_seconds", "How long the oldest queued job has waited.",
                                value=numbers.oldest_queued_age_s)


class ApiMetrics:
    def __init__(self, sessions: sessionmaker[Session]):
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(QueueCollector(sessions))
        self.latency = Histogram("focalscope_http_request_duration_seconds", "Request latency by route template.",
                                 ("method", "route", "status"), registry=self.registry)


def route_template(scope: dict) -> str:
    """The matched route's full path template; a mounted app (the dashboard's /static) by its mount path.

    FastAPI ≥ 0.16x includes routers lazily: scope["route"] is then the router's own route, without
    the /api/v1 prefix, and the full template is on the effective route context it records (earlier
    versions put a route with the full path in scope["route"]). tests/test_observability.py pins it.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path_format", None)
    return template or scope.get("root_path") or UNMATCHED_ROUTE


class RequestObserver:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed responses): times each
    HTTP request, observes it in the latency histogram and writes one access-log line."""

    def __init__(self, app, metrics: ApiMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # until a response starts: an exception that escapes is a 500

        async def send_observed(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: dict, status: int, seconds: float) -> None:
        route = route_template(scope)
        self.metrics.latency.labels(method=scope["method"], route=route, status=str(status)).observe(seconds)
        client = scope.get("client")
        access_log.info(
            "%s %s %d %.1fms", scope["method"], scope["path"], status, seconds * 1000,
            extra={"method": scope["method"], "path": scope["path"], "route": route, "status": status,
                   "duration_ms": round(seconds * 1000, 2), "client": client[0] if client else None},
        )
