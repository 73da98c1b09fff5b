"""End to end through the database, as a worker scores: documents stored, shards queued, shards
claimed lazily and scored by the pooled path (workers.scoring.job.run_score_shards), every per-token
field committed. Shared by score_cpu and score_gpu; the model comes in already loaded, so load time
is not part of the measurement."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import func, select

import app.models  # noqa: F401  (registers every table)
from app.core.config import Settings
from app.db.base import Base
from app.db.engine import make_engine, make_sessionmaker
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.run import TokenScores
from app.schemas.run import RunOptions
from app.services import checkpoints, corpora, queue, runs
from app.vocab import KIND_SCORE
from workers.context import JobContext
from workers.models import LoadedModel
from workers.scoring.accel import LinearRouting
from workers.scoring.job import run_score_shards
from workers.scoring.model_cache import CheckpointSource, ModelCache
from workers.scoring.scorer import Scorer

# Long enough that a benchmark never needs a heartbeat.
BENCH_LEASE_SECONDS = 3600.0


class Database:
    """A fresh SQLite database in `directory` holding one run over `texts`, ready to be scored."""

    def __init__(self, directory: Path, texts: list[str], options: RunOptions, *, shard_chars: int,
                 weights_sha256: str, fingerprint: str = "bench"):
        directory.mkdir(parents=True, exist_ok=True)
        self.settings = Settings(_env_file=None, data_dir=directory, database_url=f"sqlite:///{directory / 'bench.db'}",
                                 lease_seconds=BENCH_LEASE_SECONDS, heartbeat_seconds=60)
        self.options = options
        self.engine = make_engine(self.settings.db_url)
        Base.metadata.create_all(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        # The same for every database of one model, so that one ModelCache keeps its (warm, compiled)
        # scorer from a warm-up database to the measured one. The weights are never read from it.
        self.source = {"path": f"in-memory:{weights_sha256}", "format": "safetensors", "weights_sha256": weights_sha256}
        with self.sessions() as session:
            series = ModelSeries(name="bench")
            session.add(series)
            session.flush()
            checkpoint = Checkpoint(series_id=series.id, tokenizer_fingerprint=fingerprint, **self.source)
            session.add(checkpoint)
            corpus = corpora.create_corpus(
                session=session, name="bench", documents=[corpora.DocumentIn(text=t, source="bench") for t in texts])
            run, _ = runs.create_run(session=session, checkpoint_id=checkpoint.id, corpus_id=corpus.id,
                                     options=options, shard_chars=shard_chars)
            session.commit()
            self.run_id, self.fingerprint, self.n_documents = run.id, fingerprint, len(texts)

    def model_cache(self, loaded: LoadedModel, *, device: str, routing: LinearRouting | None = None,
                    **settings) -> ModelCache:
        """A worker's ModelCache that holds `loaded` already (load time is not measured), under this
        database's settings with `settings` (max_batch_tokens, compile, pack) overriding; give the
        same one to several `score` calls to measure again with the same (warm, compiled) scorer."""
        worker_settings = self.settings.model_copy(update={"pack": False, "compile": False, **settings})
        return ModelCache(worker_settings, device=device, routing=routing, load=lambda source, dtype: loaded)

    def score(self, loaded: LoadedModel, models: ModelCache, *, on_progress=None) -> tuple[int, float, Scorer]:
        """Claim and score every shard with `loaded`, held by `models` (see `model_cache`); returns
        (tokens committed, seconds, scorer). `on_progress(job_id, progress)` gets each shard's
        JobContext.report (the writer thread reports a shard when it commits)."""
        with self.sessions() as session:  # as a worker does once per tokenizer, outside the timing
            if checkpoints.load_vocabulary(session=session, fingerprint=self.fingerprint) is None:
                checkpoints.store_vocabulary(session=session, fingerprint=self.fingerprint,
                                             tokens=loaded.display_vocabulary())
                session.commit()
        stopping = threading.Event()

        def claims():
            while True:
                with self.sessions() as session:
                    claim = queue.claim_next(session=session, worker="bench", kinds=(KIND_SCORE,),
                                             lease_seconds=BENCH_LEASE_SECONDS)
                    session.commit()
                if claim is None:
                    return
                report = None if on_progress is None else (lambda progress, job=claim.job_id: on_progress(job, progress))
                yield JobContext(claim=claim, settings=self.settings, sessions=self.sessions, device=models.device,
                                 stopping=stopping, on_report=report)

        started = time.perf_counter()
        outcomes = run_score_shards(claims(), models)
        elapsed = time.perf_counter() - started
        failed = {job: repr(error) for job, error in outcomes.items() if error is not None}
        if failed:
            raise RuntimeError(f"shards failed: {failed}")
        with self.sessions() as session:
            stored, tokens = session.execute(
                select(func.count(TokenScores.id), func.sum(TokenScores.n_tokens)).where(TokenScores.run_id == self.run_id)
            ).one()
        if stored != self.n_documents:
            raise RuntimeError(f"{stored} of {self.n_documents} documents stored")
        # The scorer that did the work: still the one `models` holds for this run.
        return int(tokens), elapsed, models.get_scorer(CheckpointSource(**self.source), self.options)

    def reset(self) -> None:
        """Forget every score and queue the run's shards again, for another measurement."""
        from sqlalchemy import delete, update

        from app.models.job import Job
        from app.vocab import QUEUED

        with self.sessions() as session:
            session.execute(delete(TokenScores).where(TokenScores.run_id == self.run_id))
            session.execute(delete(Job).where(Job.run_id == self.run_id, Job.kind != KIND_SCORE))
            session.execute(update(Job).where(Job.run_id == self.run_id).values(
                status=QUEUED, claim_token=None, lease_expires_at=None, attempts=0, finished_at=None))
            session.commit()

    def close(self) -> None:
        self.engine.dispose()
