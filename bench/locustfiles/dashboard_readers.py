"""Locust users for bench/load.py (run by locust only: importing locust patches the process with
gevent): dashboard readers of one stored run.

Each user opens a document's tokens (the Document view's one big request) and, now and then, the
run's summary (the Run page), as a person clicking through the dashboard does. LOAD_RUN_ID and
LOAD_DOCUMENT_IDS (comma-separated) come from bench/load.py; LOAD_PACE_S, when set, is each user's
mean pause between requests (unset: none, a closed loop that measures capacity).
"""

from __future__ import annotations

import os
import random

from locust import between, constant, task
from locust.contrib.fasthttp import FastHttpUser

RUN_ID = int(os.environ.get("LOAD_RUN_ID", "1"))
DOCUMENT_IDS = [int(d) for d in os.environ.get("LOAD_DOCUMENT_IDS", "1").split(",")]
PACE_S = float(os.environ.get("LOAD_PACE_S", "0"))


class DashboardReader(FastHttpUser):
    wait_time = between(PACE_S / 2, PACE_S * 3 / 2) if PACE_S else constant(0)
    # Browsers send it; the server compresses JSON above a kilobyte.
    default_headers = {"Accept-Encoding": "gzip"}

    @task(4)
    def document_tokens(self) -> None:
        document_id = random.choice(DOCUMENT_IDS)
        self.client.get(f"/api/v1/runs/{RUN_ID}/documents/{document_id}/tokens", name="document tokens")

    @task(1)
    def run_summary(self) -> None:
        self.client.get(f"/api/v1/runs/{RUN_ID}/summary", name="run summary")
