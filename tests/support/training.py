"""Training jobs for the tests: a small, fast request, enqueued through the service."""

from __future__ import annotations

import pytest

from app.schemas.training import TrainingRequest
from app.services.training import enqueue_training

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
# Small enough for seconds on 2 CPU cores, big enough that 20 updates visibly teach the model.
FAST = {"preset": "tiny", "tokenizer": "bpe", "vocab_size": 1024, "batch_size": 8, "seq_len": 64}


def enqueue(sessions, settings, **fields) -> int:
    with sessions() as session:
        job = enqueue_training(session=session, request=TrainingRequest(**{**FAST, **fields}), settings=settings)
        session.commit()
        return job.id
