"""Runs with scores written straight to the store (no model): each token given as (span start, span
end, token id, p, rank), top-1 = the true token, entropy 1; a done run gets its summary computed."""

from __future__ import annotations

import hashlib

import numpy as np

from app.models import Checkpoint, Job, ModelSeries, Run
from app.schemas.run import RunOptions
from app.services import summaries
from app.services.scores import DocumentScores, store_scores
from app.vocab import DONE, KIND_SCORE, KIND_SUMMARIZE


def add_scored_run(session, *, series: ModelSeries, step: int, corpus_id: int, document_ids: list[int], tokens,
                   status: str = DONE, fingerprint: str = "a" * 64, top1=None) -> int:
    """A checkpoint of `series` at `step`, scored on the documents (tokens[i] for document_ids[i]);
    top1[i] optionally gives each token's top-1 p (default: its own p). Returns the run id."""
    checkpoint = Checkpoint(series=series, step=step, format="safetensors", path=f"/m/{series.name}/{step}",
                            weights_sha256=hashlib.sha256(f"{series.name}/{step}".encode()).hexdigest(),
                            tokenizer_fingerprint=fingerprint)
    run = Run(checkpoint=checkpoint, corpus_id=corpus_id, options=RunOptions().model_dump(), options_key=RunOptions().key())
    session.add(run)
    session.flush()
    store_scores(session=session, run_id=run.id, documents=[
        _scores(document_id, document_tokens, None if top1 is None else top1[i])
        for i, (document_id, document_tokens) in enumerate(zip(document_ids, tokens))])
    session.add(Job(kind=KIND_SCORE, status=status, run_id=run.id, payload={}, progress_total=1))
    if status == DONE:
        session.add(Job(kind=KIND_SUMMARIZE, status=DONE, run_id=run.id, payload={}))
        summaries.compute_summary(session=session, run_id=run.id)
    return run.id


def _scores(document_id: int, tokens, top1) -> DocumentScores:
    start, end, token_id, p, rank = (np.array(column) for column in zip(*tokens))
    logprob = np.log(p).astype(np.float32)
    top = logprob if top1 is None else np.log(np.array(top1)).astype(np.float32)
    return DocumentScores(document_id=document_id, top_k=1, arrays={
        "token_id": token_id, "char_start": start, "char_end": end, "logprob": logprob, "entropy": np.ones(len(p)),
        "rank": rank, "top_ids": token_id[:, None], "top_logprobs": top[:, None], "sum_p2": p ** 2,
        "context_len": np.arange(len(p))})
