"""The same-run baselines of bench/compare.py: per document an ORM query, then plain Python loops over
the tokens (what a notebook would do first). Their answers are checked against the services'."""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.corpus import Document
from app.models.run import TokenScores


def _rows(session: Session, corpus_id: int, run_id: int):
    query = (select(TokenScores).join(Document, Document.id == TokenScores.document_id)
             .where(Document.corpus_id == corpus_id, TokenScores.run_id == run_id).order_by(TokenScores.document_id))
    return {row.document_id: row for row in session.scalars(query)}


def compare(session: Session, corpus_id: int, run_a: int, run_b: int) -> dict:
    """Total Δ log p and the number of units: tokens when the ids agree, else segments found by walking
    both span lists and cutting where both have a boundary."""
    rows_a, rows_b = _rows(session, corpus_id, run_a), _rows(session, corpus_id, run_b)
    total, units = 0.0, 0
    for document_id, a in rows_a.items():
        b = rows_b[document_id]
        ids_a, ids_b = a.token_id.tolist(), b.token_id.tolist()
        lp_a, lp_b = a.logprob.tolist(), b.logprob.tolist()
        if ids_a == ids_b:
            for x, y in zip(lp_a, lp_b):
                total += y - x
                units += 1
            continue
        ends_a, ends_b = set(a.char_end.tolist()), set(b.char_end.tolist())
        units += len(ends_a & ends_b)
        total += sum(lp_b) - sum(lp_a)
    return {"total_delta": total, "units": units}


def agreement(session: Session, corpus_id: int, run_id: int) -> float:
    """Spearman's ρ between loss and entropy over every token, ranked with Python's sort."""
    losses, entropies = [], []
    for row in _rows(session, corpus_id, run_id).values():
        losses.extend(-x for x in row.logprob.tolist())
        entropies.extend(row.entropy.tolist())
    rank_loss, rank_entropy = _ranks(losses), _ranks(entropies)
    n = len(losses)
    mean = (n + 1) / 2
    cov = sum((x - mean) * (y - mean) for x, y in zip(rank_loss, rank_entropy))
    var_x = sum((x - mean) ** 2 for x in rank_loss)
    var_y = sum((y - mean) ** 2 for y in rank_entropy)
    return cov / math.sqrt(var_x * var_y)


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks
