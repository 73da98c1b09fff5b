"""Probes, metrics and logs: /healthz, /readyz (503 until the database answers at the schema head),
the API's Prometheus /metrics (queue numbers from the database, request latency by route template),
a worker's own metrics on its port, the access log and JSON log lines with run, job and shard ids."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from app.core.config import Settings
from app.core.log_format import JsonFormatter
from app.db import migrate
from app.db.base import utcnow
from app.main import create_app
from app.models.job import Job
from app.services import queue
from app.vocab import DONE, FAILED, KIND_SCORE, KIND_SUMMARIZE, KIND_TRAIN, QUEUED, RUNNING
from tests.support.api import API, error_of
from tests.support.data import make_run
from workers.context import JobContext
from workers.loop import Worker
from workers.metrics import WorkerMetrics

# Nothing listens on port 1: connecting is refused at once.
UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1"
OLDEST_QUEUED_S = 90


def _samples(text: str) -> list:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def _value(samples: list, name: str, **labels) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_healthz_answers_while_readyz_and_metrics_say_the_database_is_unreachable(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=UNREACHABLE_PG, allowed_hosts=["testserver"])
    with TestClient(create_app(settings, serve_ui=False)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        message = error_of(client.get("/readyz"), 503, "unavailable")
        assert message.startswith("the database is unreachable: ")
        metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert _value(_samples(metrics.text), "focalscope_database_up") == 0


def test_readyz_is_ready_only_at_the_schema_head(settings):
    with TestClient(create_app(settings, serve_ui=False)) as client:
        response = client.get("/readyz")
        message = error_of(response, 503, "unavailable")
        assert message == f"the database schema is not migrated; head is {migrate.head_revision()}: run `focalscope db upgrade`"
        migrate.upgrade(settings.db_url, "0001")
        assert "schema is at revision 0001;" in error_of(client.get("/readyz"), 503, "unavailable")
        migrate.upgrade(settings.db_url)
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": settings.db_url.split(":")[0].split("+")[0],
                            "revision": migrate.head_revision()}


def _seed_jobs(sessions) -> None:
    """Score: 3 done (100 + 250 + 0 tokens), 1 running, 2 queued (90 s and 10 s old); summarize: 1
    done (its tokens are not scored tokens); train: 1 failed."""
    with sessions() as session:
        def job(kind, status, tokens=0, age_s=0.0):
            row = queue.enqueue(session=session, kind=kind, payload={})
            session.execute(update(Job).where(Job.id == row.id).values(
                status=status, tokens_done=tokens, created_at=utcnow() - timedelta(seconds=age_s)))

        for tokens in (100, 250, 0):
            job(KIND_SCORE, DONE, tokens)
        job(KIND_SCORE, RUNNING, 40)
        job(KIND_SCORE, QUEUED, age_s=OLDEST_QUEUED_S)
        job(KIND_SCORE, QUEUED, age_s=10)
        job(KIND_SUMMARIZE, DONE, 350)
        job(KIND_TRAIN, FAILED)
        session.commit()


def test_metrics_report_the_queue_from_the_database_and_latency_by_route_template(api, sessions, caplog):
    _seed_jobs(sessions)
    with caplog.at_level(logging.INFO, logger="focalscope.access"):
        for run_id in (7, 7, 8):
            assert api.get(f"{API}/runs/{run_id}").status_code == 404
        assert api.get("/healthz").status_code == 200
    samples = _samples(api.get("/metrics").text)

    assert _value(samples, "focalscope_database_up") == 1
    assert _value(samples, "focalscope_jobs", kind="score", status="done") == 3
    assert _value(samples, "focalscope_jobs", kind="score", status="queued") == 2
    assert _value(samples, "focalscope_jobs", kind="score", status="running") == 1
    assert _value(samples, "focalscope_jobs", kind="summarize", status="done") == 1
    assert _value(samples, "focalscope_jobs", kind="train", status="failed") == 1
    assert _value(samples, "focalscope_jobs", kind="train", status="done") == 0
    assert _value(samples, "focalscope_shards_done_total") == 3
    assert _value(samples, "focalscope_tokens_scored_total") == 350
    assert OLDEST_QUEUED_S <= _value(samples, "focalscope_queue_oldest_age_seconds") < OLDEST_QUEUED_S + 30

    latency = "focalscope_http_request_duration_seconds_count"
    assert _value(samples, latency, method="GET", route=f"{API}/runs/{{run_id}}", status="404") == 3
    assert _value(samples, latency, method="GET", route="/healthz", status="200") == 1
    assert not [s for s in samples if "/runs/7" in s.labels.get("route", "")]  # never the raw path

    access = [r for r in caplog.records if r.name == "focalscope.access"]
    assert [(r.path, r.route, r.status) for r in access] == [
        (f"{API}/runs/7", f"{API}/runs/{{run_id}}", 404), (f"{API}/runs/7", f"{API}/runs/{{run_id}}", 404),
        (f"{API}/runs/8", f"{API}/runs/{{run_id}}", 404), ("/healthz", "/healthz", 200)]
    line = json.loads(JsonFormatter().format(access[0]))
    assert {k: line[k] for k in ("level", "logger", "method", "path", "route", "status")} == {
        "level": "info", "logger": "focalscope.access", "method": "GET", "path": f"{API}/runs/7",
        "route": f"{API}/runs/{{run_id}}", "status": 404}
    assert line["duration_ms"] >= 0 and line["message"].startswith(f"GET {API}/runs/7 404 ")


@pytest.fixture
def worker_log() -> io.StringIO:
    """The focalscope.worker logger's lines as JSON, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("focalscope.worker")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield buffer
    logger.removeHandler(handler)
    logger.setLevel(level)


# What this test checks does not depend on the database (the queue's own tests run on both).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_worker_metrics_and_json_log_lines_carry_run_job_and_shard(settings, sessions, tiny_llama_dir, worker_log):
    run_id = make_run(sessions, tiny_llama_dir)
    with sessions() as session:
        poison = queue.enqueue(session=session, kind=KIND_SCORE, payload={"poison": True})
        session.commit()

    def handler(ctx: JobContext):
        if ctx.claim.payload.get("poison"):
            raise RuntimeError("poisoned document")
        with ctx.sessions() as session:
            queue.complete(session=session, claim=ctx.claim, tokens_done=123)
            session.commit()
        ctx.report(done=1, tokens=123)

    metrics = WorkerMetrics(worker="w1", device="cpu")
    Worker(settings, device="cpu", name="w1", handlers={KIND_SCORE: handler}, metrics=metrics).run_forever(
        exit_when_idle=True)
    port = metrics.serve(0, "127.0.0.1")
    samples = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    assert _value(samples, "focalscope_worker_jobs_total", kind="score", outcome="done") == 1
    assert _value(samples, "focalscope_worker_jobs_total", kind="score", outcome="failed") == 3  # every attempt
    assert _value(samples, "focalscope_worker_shards_done_total") == 1
    assert _value(samples, "focalscope_worker_tokens_scored_total") == 123
    assert _value(samples, "focalscope_worker_jobs_held") == 0
    assert _value(samples, "focalscope_worker_info", worker="w1", device="cpu") == 1

    lines = [json.loads(line) for line in worker_log.getvalue().splitlines()]
    done = next(line for line in lines if line["message"].endswith(" done"))
    assert {k: done[k] for k in ("level", "run_id", "kind", "attempt")} == {
        "level": "info", "run_id": run_id, "kind": "score", "attempt": 1}
    assert done["shard"] == done["job_id"] and done["message"] == f"job {done['job_id']} done"
    failed = [line for line in lines if line["level"] == "error"]
    assert [(line["job_id"], line["attempt"]) for line in failed] == [(poison.id, 1), (poison.id, 2), (poison.id, 3)]
    assert "run_id" not in failed[0] and failed[0]["message"].endswith("poisoned document")
