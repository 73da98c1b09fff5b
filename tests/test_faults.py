"""Faults a shared deployment meets, survived: a document that makes tokenization raise (in the API
and on the run page), a disk that fills up under SQLite, a PostgreSQL server restarted in the middle
of a run. Worker processes killed or stopped mid-shard are in test_faults_processes.py."""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.main import create_app
from app.models.job import Job
from app.models.run import TokenScores
from app.schemas.run import RunOptions
from app.services import checkpoints, corpora, runs
from app.vocab import DONE, FAILED, KIND_SCORE, MAX_ATTEMPTS, QUEUED
from tests.support.api import API, error_of, own_settings
from tests.support.browser import watched_page
from tests.support.data import TEXTS
from tests.support.live import live_app
from tests.support.models import build_tiny_model
from tests.support.timing import wait_until
from workers.loop import Worker

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
POISON = "Fair is foul, and foul is fair: zyzzyva."


def scenes_run(sessions, model_dir: Path, texts: list[str], *, max_length: int = 16) -> int:
    """A run of `model_dir` on `texts`, one document per shard; its id."""
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="scenes", documents=[
            corpora.DocumentIn(text=t, source=f"{i}.txt") for i, t in enumerate(texts)])
        checkpoint, _ = checkpoints.register_checkpoint(session=session, path=model_dir, series="tiny")
        run, _ = runs.create_run(session=session, checkpoint_id=checkpoint.id, corpus_id=corpus.id,
                                 options=RunOptions(max_length=max_length), shard_chars=1)
        session.commit()
        return run.id


def stored_documents(sessions, run_id: int) -> dict[int, int]:
    """document id -> how many token-score rows the run holds for it."""
    with sessions() as session:
        return dict(session.execute(select(TokenScores.document_id, func.count()).where(TokenScores.run_id == run_id)
                                    .group_by(TokenScores.document_id)).all())


@pytest.fixture(scope="module")
def word_level_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama whose word-level tokenizer has no unknown token: a word outside its vocabulary
    makes tokenization raise, as a real tokenizer does on input it cannot encode."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    directory = build_tiny_model(tmp_path_factory.mktemp("word-level"), "llama")
    words = sorted({w for text in TEXTS for w in text.split()} | set(POISON.split()) - {"zyzzyva."})
    vocab = {"<s>": 0, "</s>": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))  # "<unk>" is not in vocab: unknown words raise
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (directory / name).unlink(missing_ok=True)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>").save_pretrained(directory)
    return directory


def test_a_poison_document_fails_its_own_shard_and_the_run_can_be_retried(settings, sessions, api, word_level_model_dir):
    texts = [t for t in TEXTS if t] + [POISON]
    run_id = scenes_run(sessions, word_level_model_dir, texts)
    Worker(settings, device="cpu").run_forever(exit_when_idle=True)
    with sessions() as session:
        shards = session.execute(select(Job.status, Job.attempts, Job.error).where(Job.run_id == run_id, Job.kind == KIND_SCORE)).all()
    failed = [s for s in shards if s.status == FAILED]
    assert len(failed) == 1 and failed[0].attempts == MAX_ATTEMPTS  # tried up to the cap, then given up
    assert sum(s.status == DONE for s in shards) == len(texts) - 1  # every other shard finished
    assert len(stored_documents(sessions, run_id)) == len(texts) - 1
    # The API says which shard failed and why; the run is failed, with one failed shard, and retryable.
    run = api.get(f"{API}/runs/{run_id}").json()
    assert (run["progress"]["status"], run["progress"]["shards_failed"], run["progress"]["shards_done"]) == (FAILED, 1, len(texts) - 1)
    assert any("zyzzyva" in e or "unk" in e.lower() for e in run["progress"]["errors"]), run["progress"]["errors"]
    assert api.post(f"{API}/runs/{run_id}/retry").status_code == 200
    with sessions() as session:
        assert session.scalar(select(func.count()).where(Job.run_id == run_id, Job.status == QUEUED)) == 1


@SQLITE_ONLY
@pytest.mark.slow
def test_the_run_page_shows_the_failed_shard_and_retries_it(settings, sessions, word_level_model_dir, browser):
    """The same poison document, seen where a user looks: the run page says the run failed with one
    failed shard and why, and its Retry button queues that shard again."""
    run_id = scenes_run(sessions, word_level_model_dir, [t for t in TEXTS if t] + [POISON])
    Worker(settings, device="cpu").run_forever(exit_when_idle=True)
    with live_app(create_app(settings)) as url, watched_page(browser, SimpleNamespace(url=url)) as page:
        page.goto(f"/#/runs/{run_id}")
        expect(page.locator("main h1")).to_contain_text(FAILED)
        expect(page.get_by_test_id("run-errors")).to_contain_text(re.compile("zyzzyva|unk", re.IGNORECASE))
        expect(page.locator(".progress-cell")).to_contain_text("1 failed")
        page.get_by_role("button", name="Retry failed shards").click()

        def queued() -> int:
            with sessions() as session:
                return session.scalar(select(func.count()).where(Job.run_id == run_id, Job.status == QUEUED))
        wait_until(lambda: queued() == 1, timeout=10, what="the failed shard to be queued again")


def test_a_full_disk_fails_the_shard_retryably_and_the_retry_succeeds_once_space_is_freed(tmp_path, small_disk, tiny_llama_dir):
    url = f"sqlite:///{small_disk / 'focalscope.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    long_text = " ".join(TEXTS) * 40  # about 11k tokens: a few hundred KB of scores
    run_id = scenes_run(sessions, tiny_llama_dir, [long_text], max_length=64)
    # Leave about 200 KB free: room for the queue's small writes, not for the shard's scores.
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * (free - 200_000))
    settings = own_settings(tmp_path / "data", url, lease_seconds=30, heartbeat_seconds=0.5)
    worker = Worker(settings, device="cpu")
    assert worker.run_one()
    with sessions() as session:
        job = session.scalar(select(Job).where(Job.run_id == run_id, Job.kind == KIND_SCORE))
        assert (job.status, job.attempts) == (QUEUED, 1)  # failed, and back in the queue for another try
        assert job.error.startswith("database error: database or disk is full"), job.error[:300]
    assert stored_documents(sessions, run_id) == {}
    with sqlite3.connect(small_disk / "focalscope.db") as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    filler.unlink()
    worker.run_forever(exit_when_idle=True)
    assert runs_status(sessions, run_id) == DONE and list(stored_documents(sessions, run_id).values()) == [1]
    engine.dispose()


def runs_status(sessions, run_id: int) -> str:
    with sessions() as session:
        return runs.run_progress(session=session, run_ids=[run_id])[run_id].status


def test_a_postgres_restart_mid_run_is_survived_by_worker_and_api(tmp_path, tiny_llama_dir, private_postgres):
    postgres = private_postgres
    migrate.upgrade(postgres.url)
    engine = make_engine(postgres.url)
    sessions = make_sessionmaker(engine)
    texts = [t for t in TEXTS if t] * 6  # 24 shards
    run_id = scenes_run(sessions, tiny_llama_dir, texts)
    # A short lease: a shard whose completion the restart cut off goes back to the queue soon.
    settings = own_settings(tmp_path / "data", postgres.url, lease_seconds=4, heartbeat_seconds=0.5)
    worker = Worker(settings, device="cpu")
    working = threading.Thread(target=worker.run_forever, daemon=True)
    working.start()
    with TestClient(create_app(settings, serve_ui=False)) as client:
        wait_until(lambda: client.get(f"{API}/runs/{run_id}").json()["progress"]["shards_done"] >= 2,
                   what="the first shards to be done")
        postgres.stop()
        assert "database is unavailable" in error_of(client.get(f"{API}/runs/{run_id}"), 503, "unavailable")
        assert client.get("/readyz").status_code == 503
        postgres.start()
        wait_until(lambda: client.get(f"{API}/runs/{run_id}").json()["progress"]["status"] == DONE, timeout=60,
                   what="the run to finish after the restart")
    worker.stop()
    working.join(timeout=30)
    assert not working.is_alive()
    assert sorted(stored_documents(sessions, run_id).values()) == [1] * len(texts)
    engine.dispose()
