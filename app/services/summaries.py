"""Compute and store a run's summary (the `summarize` job), reading its token arrays in batches."""

from __future__ import annotations

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.analytics.summary import SUMMARY_VERSION, RunArrays, summarize
from app.models.run import Run, RunSummary, TokenScores
from app.services.checkpoints import load_vocabulary

# Rows fetched per round trip while reading a run's arrays.
READ_BATCH_ROWS = 256


def read_run_arrays(*, session: Session, run_id: int) -> RunArrays:
    columns = (TokenScores.n_tokens, TokenScores.top_k, TokenScores.token_id, TokenScores.logprob,
               TokenScores.entropy, TokenScores.rank, TokenScores.top_logprobs, TokenScores.sum_p2)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in RunArrays.__dataclass_fields__}
    result = session.execute(
        select(*columns).where(TokenScores.run_id == run_id).order_by(TokenScores.document_id)
        .execution_options(yield_per=READ_BATCH_ROWS)
    )
    for n, k, token_id, logprob, entropy, rank, top_logprobs, sum_p2 in result:
        if n == 0:
            continue
        parts["token_id"].append(token_id)
        parts["logprob"].append(logprob)
        parts["entropy"].append(entropy)
        parts["rank"].append(rank)
        parts["top1_logprob"].append(top_logprobs.reshape(n, k)[:, 0])
        parts["sum_p2"].append(sum_p2)
    empty = {"token_id": np.int32, "rank": np.int32}
    return RunArrays(**{
        name: np.concatenate(chunks) if chunks else np.empty(0, empty.get(name, np.float32))
        for name, chunks in parts.items()
    })


def compute_summary(*, session: Session, run_id: int) -> RunSummary:
    run = session.get(Run, run_id)
    arrays = read_run_arrays(session=session, run_id=run_id)
    vocabulary = load_vocabulary(session=session, fingerprint=run.checkpoint.tokenizer_fingerprint) or []
    token_text = dict(enumerate(vocabulary))
    result = summarize(arrays, token_text)
    n_documents = session.query(TokenScores).filter(TokenScores.run_id == run_id).count()
    session.execute(delete(RunSummary).where(RunSummary.run_id == run_id))
    summary = RunSummary(
        run_id=run_id, n_tokens=result["n_tokens"], n_documents=n_documents, mean_loss=result["mean_loss"],
        perplexity=result["perplexity"], ece=result["ece"], brier=result["brier"],
        top1_accuracy=result["top1_accuracy"], stats=result["stats"], version=SUMMARY_VERSION,
    )
    session.add(summary)
    session.flush()
    return summary
