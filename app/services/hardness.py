"""How much the definitions of a "hard" token agree over a run: one streamed pass over its scores (and
another run's, for excess loss or loss drop) sums every definition and keeps a bounded sample of tokens
(app/analytics/hardness_sample.py), then Spearman's ρ and hardest-set overlaps on it
(app/analytics/hardness.py). The result is kept in the ResultCache."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.analytics import hardness_sample
from app.analytics.hardness import DEFINITIONS, definitions
from app.analytics.hardness_sample import AgreementTally
from app.models.run import Run, TokenScores
from app.services.compare_runs import RunPair, run_pair
from app.services.errors import InvalidInput
from app.services.series_cache import ResultCache, cached
from app.services.series_stream import document_batches, read_scores

RUN_COLUMNS = ("token_id", "logprob", "entropy", "rank", "top_logprobs")


def pair_definition(pair: RunPair) -> str | None:
    """'loss_drop' for two checkpoints of one series, 'excess_loss' for any other second run, None alone."""
    if pair.a.id == pair.b.id:
        return None
    same_series = pair.a.checkpoint.series_id == pair.b.checkpoint.series_id
    return "loss_drop" if same_series and pair.a.checkpoint.step != pair.b.checkpoint.step else "excess_loss"


def run_definitions(*, session: Session, run: Run, other: Run | None = None) -> AgreementTally:
    """The single-run definitions and, with `other`, the pair one, over the run's documents in id
    order, a batch at a time: their sums over every token and the sample that ρ and the overlaps need."""
    pair = run_pair(session=session, a=run.id, b=(other or run).id)
    extra = pair_definition(pair)
    names = [*DEFINITIONS, *([extra] if extra else [])]
    n = session.scalar(select(func.coalesce(func.sum(TokenScores.n_tokens), 0)).where(TokenScores.run_id == run.id))
    tally = AgreementTally(names, int(n), hardness_sample.SAMPLE_CAP)
    for first, last in document_batches(session, pair.run_ids):
        rows = read_scores(session=session, run_ids=pair.run_ids, columns=RUN_COLUMNS,
                           where=TokenScores.document_id.between(first, last))
        documents = [(document_id, _run_row(rows, document_id, run.id)["token_id"].size) for document_id in sorted(rows)]
        values = np.empty((len(names), sum(size for _, size in documents)), dtype=np.float64)
        at = 0
        for document_id, size in documents:
            row = rows[document_id][run.id]
            top1 = row["top_logprobs"].reshape(size, -1)[:, 0] if size else np.zeros(0)
            found = definitions(row["logprob"], row["entropy"], row["rank"], top1)
            values[: len(DEFINITIONS), at:at + size] = [found[name] for name in DEFINITIONS]
            if extra:
                values[-1, at:at + size] = _loss_difference(pair, extra, document_id, rows[document_id])
            at += size
        tally.add(values, documents)
    return tally


def _run_row(rows: dict, document_id: int, run_id: int) -> dict:
    row = rows[document_id].get(run_id)
    if row is None:
        raise InvalidInput(f"document {document_id} has no scores from run {run_id}, although the run is done")
    return row


def _loss_difference(pair: RunPair, name: str, document_id: int, rows: dict) -> np.ndarray:
    run, other = rows[pair.a.id], rows.get(pair.b.id)
    if other is None or not np.array_equal(run["token_id"], other["token_id"]):
        raise InvalidInput(f"{name.replace('_', ' ')} compares runs token by token, but runs {pair.a.id} and "
                           f"{pair.b.id} tokenized document {document_id} differently (or one did not score it)",
                           detail={"document_id": document_id})
    difference = other["logprob"].astype(np.float64) - run["logprob"].astype(np.float64)  # loss(run) − loss(other)
    later_first = name == "loss_drop" and pair.a.checkpoint.step > pair.b.checkpoint.step
    return -difference if later_first else difference


def agreement(*, session: Session, run: Run, other: Run | None, fraction: float,
              cache: ResultCache | None = None) -> dict:
    """Per definition its mean over every token; between every two, Spearman's ρ and the overlap of the
    hardest `fraction`, over every token up to SAMPLE_CAP and on a sample of that many above it."""
    if not 0 < fraction <= 1:
        raise InvalidInput(f"fraction must be in (0, 1], got {fraction}")
    key = ("hardness", run.id, run.created_at.isoformat(), other.id if other else None,
           other.created_at.isoformat() if other else None, float(fraction), hardness_sample.SAMPLE_CAP)

    def compute() -> dict:
        return run_definitions(session=session, run=run, other=other).result(fraction)

    return {"run_id": run.id, "other_run_id": other.id if other else None, "fraction": fraction,
            **cached(cache, key, compute)}
