"""The `score` job: score one shard of a run's documents and commit all of it, with the shard's done
mark, in one transaction conditioned on our claim."""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from app.models.corpus import Document
from app.models.run import TokenScores
from app.schemas.run import RunOptions
from app.services import checkpoints, queue, runs, scores
from workers.context import JobContext, PermanentError
from workers.models import LoadedModel, load_checkpoint
from workers.scorer import Scorer

log = logging.getLogger("focalscope.worker")
MODEL_CACHE_KEY = "model"


def run_score_shard(ctx: JobContext) -> None:
    document_ids = list(ctx.claim.payload["document_ids"])
    with ctx.sessions() as session:
        run = runs.get_run(session=session, run_id=ctx.claim.run_id)
        options = RunOptions.model_validate(run.options)
        checkpoint = run.checkpoint
        already = set(session.scalars(
            select(TokenScores.document_id).where(TokenScores.run_id == run.id, TokenScores.document_id.in_(document_ids))
        ))
        documents = session.execute(
            select(Document.id, Document.text).where(Document.id.in_(document_ids)).order_by(Document.position)
        ).all()
        run_id, fingerprint = run.id, checkpoint.tokenizer_fingerprint
        has_vocabulary = checkpoints.load_vocabulary(session=session, fingerprint=fingerprint) is not None
        source = {"path": checkpoint.path, "format": checkpoint.format, "weights_sha256": checkpoint.weights_sha256}
    todo = [(d.id, d.text) for d in documents if d.id not in already]
    if len(documents) != len(document_ids):
        log.warning("shard of run %d: %d documents were deleted", run_id, len(document_ids) - len(documents))

    loaded = cached_model(ctx, source, options.dtype)
    if not has_vocabulary:
        with ctx.sessions() as session:
            checkpoints.store_vocabulary(session=session, fingerprint=fingerprint, tokens=loaded.display_vocabulary())
            session.commit()



    scorer = Scorer(loaded, options, max_batch_tokens=ctx.settings.max_batch_tokens)
    started = time.monotonic()
    done_before = len(already)
    results = scorer.score(
        todo, check=ctx.check,
        on_progress=lambda docs, tokens: ctx.report(done=done_before + docs, tokens=tokens),
    )
    n_tokens = sum(r.n_tokens for r in results)
    elapsed = time.monotonic() - started
    rate = n_tokens / elapsed if elapsed > 0 else None
    with ctx.sessions() as session:
        queue.complete(session=session, claim=ctx.claim, tokens_done=n_tokens, tokens_per_s=rate)
        scores.store_scores(session=session, run_id=run_id, documents=results)
        runs.on_shard_done(session=session, run_id=run_id)
        session.commit()
    log.info("run %d: %d documents, %d tokens in %.1fs (%.0f tokens/s)", run_id, len(results), n_tokens,
             elapsed, rate or 0.0)


def cached_model(ctx: JobContext, source: dict, dtype: str) -> LoadedModel:
    """The last loaded model stays in memory: consecutive shards of a run reuse it."""
    key = (source["weights_sha256"], source["path"], dtype, ctx.device)
    cached = ctx.cache.get(MODEL_CACHE_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    ctx.cache.pop(MODEL_CACHE_KEY, None)  # free the previous model before loading the next
    try:
        loaded = load_checkpoint(cache_dir=ctx.settings.cache_dir, device=ctx.device, dtype=dtype, **source)
    except FileNotFoundError as exc:
        raise PermanentError(str(exc)) from exc
    ctx.cache[MODEL_CACHE_KEY] = (key, loaded)
    return loaded
