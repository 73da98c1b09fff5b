"""The naive baselines of bench.series: what one would write first. Per document, an ORM query for
its rows of the series' runs (the packed columns undeferred), then a Python loop over its tokens.
Each returns the same numbers as the service, so the bench checks one against the other."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from app.analytics.cartography import DEFAULT_CONFIDENCE_THRESHOLD, DEFAULT_VARIABILITY_THRESHOLD, REGIONS
from app.analytics.learned_at import NEVER
from app.models.corpus import Document
from app.models.run import TokenScores


def _documents(session: Session, corpus_id: int, run_ids: list[int], columns: tuple[str, ...]):
    """Per document of the corpus: each run's row (in run_ids order) as lists."""
    document_ids = session.scalars(select(Document.id).where(Document.corpus_id == corpus_id).order_by(Document.id))
    for document_id in document_ids.all():
        rows = session.scalars(
            select(TokenScores).where(TokenScores.document_id == document_id, TokenScores.run_id.in_(run_ids))
            .options(*(undefer(getattr(TokenScores, name)) for name in columns))
        ).all()
        by_run = {row.run_id: row for row in rows}
        yield [{name: getattr(by_run[run_id], name).tolist() for name in columns} for run_id in run_ids]
        session.expunge_all()  # as a careful author would: nothing accumulates in the identity map


def transitions(session: Session, corpus_id: int, run_a: int, run_b: int, tau: float) -> dict[str, int]:
    counts = Counter()
    for at_a, at_b in _documents(session, corpus_id, [run_a, run_b], ("logprob",)):
        for logprob_a, logprob_b in zip(at_a["logprob"], at_b["logprob"]):
            counts[("H" if -logprob_a > tau else "L") + ("H" if -logprob_b > tau else "L")] += 1
    return {cell: counts[cell] for cell in ("HH", "LH", "HL", "LL")}


def learned_at(session: Session, corpus_id: int, run_ids: list[int], steps: list[int], tau_easy: float) -> dict:
    """Learned-at step counts, overall (NEVER for never) and per token type."""
    overall, per_type = Counter(), defaultdict(Counter)
    for rows in _documents(session, corpus_id, run_ids, ("token_id", "logprob")):
        for i, token_id in enumerate(rows[0]["token_id"]):
            learned = NEVER
            for k in reversed(range(len(steps))):
                if math.exp(rows[k]["logprob"][i]) < tau_easy:
                    break
                learned = steps[k]
            overall[learned] += 1
            per_type[token_id][learned] += 1
    return {"overall": overall, "per_type": per_type}


def cartography(session: Session, corpus_id: int, run_ids: list[int]) -> dict:
    """Occurrences per region and per-type sums of confidence, variability, correctness, forgetting."""
    in_region, per_type = Counter(), defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0])
    for rows in _documents(session, corpus_id, run_ids, ("token_id", "logprob", "rank")):
        for i, token_id in enumerate(rows[0]["token_id"]):
            p = [math.exp(row["logprob"][i]) for row in rows]
            top1 = [row["rank"][i] == 0 for row in rows]
            confidence = sum(p) / len(p)
            variability = math.sqrt(sum((x - confidence) ** 2 for x in p) / len(p))
            correctness = sum(top1) / len(top1)
            forgetting = sum(1 for now, later in zip(top1, top1[1:]) if now and not later)
            if variability >= DEFAULT_VARIABILITY_THRESHOLD:
                in_region[REGIONS[1]] += 1
            else:
                in_region[REGIONS[0] if confidence >= DEFAULT_CONFIDENCE_THRESHOLD else REGIONS[2]] += 1
            sums = per_type[token_id]
            sums[0] += 1
            sums[1] += confidence
            sums[2] += variability
            sums[3] += correctness
            sums[4] += forgetting
    return {"regions": in_region, "per_type": per_type}
