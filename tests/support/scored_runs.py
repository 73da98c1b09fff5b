"""Runs with scores written straight to the store (no model): each token given as (span start, span
end, token id, p, rank), top-1 = the true token, entropy 1; a done run gets its summary computed."""

from __future__ import annotations

import hashlib

import numpy as np
from sqlalchemy import select

from app.models import Checkpoint, Document, Job, ModelSeries, Run
from app.schemas.run import RunOptions
from app.services import corpora, summaries
from app.services.scores import FIELD_DTYPES, DocumentScores, store_scores
from app.vocab import DONE, KIND_SCORE, KIND_SUMMARIZE, TOKEN_FIELDS, TOP_K_FIELDS


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


def seed_run(sessions, n_documents: int, scored: set[int], name: str = "big") -> tuple[int, list[int]]:
    """A run over a new corpus of n_documents whose documents at the positions in `scored` have token
    rows (2 tokens each, loss = position / 1000), written through the services: no model involved.
    Returns (run id, document ids in corpus order)."""
    with sessions() as session:
        documents = [corpora.DocumentIn(text=f"document {i}", source=f"{name}:{i}", title=f"#{i}") for i in range(n_documents)]
        corpus = corpora.create_corpus(session=session, name=name, documents=documents)
        checkpoint = Checkpoint(series=ModelSeries(name=f"series-{name}"), format="safetensors", path="/m",
                                weights_sha256="0" * 64, tokenizer_fingerprint="f" * 64)
        run = Run(checkpoint=checkpoint, corpus=corpus, options={}, options_key="{}")
        session.add(run)
        session.flush()
        ids = list(session.scalars(select(Document.id).where(Document.corpus_id == corpus.id).order_by(Document.position)))

        def arrays(position: int) -> dict:
            fields = {name: np.zeros((2, 1) if name in TOP_K_FIELDS else 2, FIELD_DTYPES[name]) for name in TOKEN_FIELDS}
            fields["logprob"][:] = -position / 1000
            return fields

        store_scores(session=session, run_id=run.id,
                     documents=[DocumentScores(document_id=ids[p], top_k=1, arrays=arrays(p)) for p in sorted(scored)])
        session.commit()
        return run.id, ids
