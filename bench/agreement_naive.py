"""The baseline of bench/agreement.py: the definitions' agreement as focalscope computed it before it
sampled (kept for the benchmark, and for tests/test_hardness_sampling.py's check that a run under the
cap gets exactly the old answer). Every token of the run goes into one float64 [definitions, tokens]
matrix; ρ then ranks a second matrix of the same size."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.analytics.hardness import DEFINITIONS, definitions, hardest_overlap, spearman
from app.models.run import Run, TokenScores
from app.services.compare_runs import run_pair
from app.services.hardness import RUN_COLUMNS, _loss_difference, pair_definition
from app.services.series_stream import document_batches, read_scores


def run_definitions(*, session: Session, run: Run, other: Run | None = None) -> tuple[list[str], np.ndarray]:
    pair = run_pair(session=session, a=run.id, b=(other or run).id)
    extra = pair_definition(pair)
    names = [*DEFINITIONS, *([extra] if extra else [])]
    n = session.scalar(select(func.coalesce(func.sum(TokenScores.n_tokens), 0)).where(TokenScores.run_id == run.id))
    values = np.empty((len(names), int(n)), dtype=np.float64)
    at = 0
    for first, last in document_batches(session, pair.run_ids):
        rows = read_scores(session=session, run_ids=pair.run_ids, columns=RUN_COLUMNS,
                           where=TokenScores.document_id.between(first, last))
        for document_id in sorted(rows):
            row = rows[document_id][run.id]
            size = row["token_id"].size
            top1 = row["top_logprobs"].reshape(size, -1)[:, 0] if size else np.zeros(0)
            found = definitions(row["logprob"], row["entropy"], row["rank"], top1)
            values[: len(DEFINITIONS), at:at + size] = [found[name] for name in DEFINITIONS]
            if extra:
                values[-1, at:at + size] = _loss_difference(pair, extra, document_id, rows[document_id])
            at += size
    return names, values[:, :at]


def agreement(*, session: Session, run: Run, other: Run | None, fraction: float) -> dict:
    names, values = run_definitions(session=session, run=run, other=other)
    return {"definitions": names, "n_tokens": int(values.shape[1]),
            "means": {name: float(row.mean()) if row.size else None for name, row in zip(names, values)},
            "spearman": spearman(values) if values.shape[1] > 1 else None,
            "hardest_overlap": hardest_overlap(values, fraction) if values.shape[1] else None}
