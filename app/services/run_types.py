"""Every token type of a run: count, frequency rank, mean p and the mean of each definition of "hard"
(app/analytics/hardness.py), sortable, filterable by text and paged; and one type's occurrences with
context. One streamed pass builds the per-type table (kept in the ResultCache); requests sort and page it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from app.analytics.focal import prob
from app.analytics.hardness import DEFINITIONS, definitions
from app.analytics.token_types import TypeTable
from app.models.run import Run
from app.services.checkpoints import load_vocabulary
from app.services.errors import InvalidInput
from app.services.series_cache import ResultCache, cached
from app.services.series_cartography import FirstOccurrences
from app.services.series_output import round_significant, texts_at, tokens_in_text
from app.services.series_stream import run_batches

MEANS = ("mean_p", *(f"mean_{name}" for name in DEFINITIONS))
SORT_KEYS = ("count", "frequency_rank", "token_id", "text", *MEANS)
RUN_COLUMNS = ("token_id", "logprob", "entropy", "rank", "top_logprobs")


@dataclass(frozen=True)
class TypeTableResult:
    token_id: np.ndarray  # ascending
    count: np.ndarray
    frequency_rank: np.ndarray  # 1 = most frequent (ties by id)
    means: dict[str, np.ndarray]  # MEANS name → per type
    text: list[str]


def type_table(*, session: Session, run: Run, cache: ResultCache | None = None) -> TypeTableResult:
    def compute() -> TypeTableResult:
        table, first = TypeTable(1 + len(MEANS)), FirstOccurrences()
        for document_id, row in _documents(session, run, RUN_COLUMNS):
            n = row["token_id"].size
            top1 = row["top_logprobs"].reshape(n, -1)[:, 0] if n else np.zeros(0)
            found = definitions(row["logprob"], row["entropy"], row["rank"], top1)
            values = np.stack([np.ones(n), prob(row["logprob"].astype(np.float64)),
                               *(found[name] for name in DEFINITIONS)], axis=1)
            table.add(row["token_id"].astype(np.int64), values)
            first.add(document_id, row["token_id"])
        token_id, sums = table.rows(present=0)
        count = sums[:, 0]
        order = np.lexsort((token_id, -count))
        frequency_rank = np.empty(token_id.size, dtype=np.int64)
        frequency_rank[order] = np.arange(1, token_id.size + 1)
        return TypeTableResult(token_id=token_id, count=count.astype(np.int64), frequency_rank=frequency_rank,
                               means={name: sums[:, 1 + k] / count for k, name in enumerate(MEANS)},
                               text=_type_texts(session, run, token_id, first))

    return cached(cache, ("run-types", run.id, run.created_at.isoformat()), compute)


def _documents(session: Session, run: Run, columns: tuple[str, ...]):
    for batch in run_batches(session=session, run_id=run.id, columns=columns):
        yield from batch.items()


def _type_texts(session: Session, run: Run, token_id: np.ndarray, first: FirstOccurrences) -> list[str]:
    """The tokenizer's display texts when a worker stored them, else each type's first occurrence's text."""
    vocabulary = load_vocabulary(session=session, fingerprint=run.checkpoint.tokenizer_fingerprint)
    if vocabulary is not None and token_id.size and token_id[-1] < len(vocabulary):
        return [vocabulary[i] for i in token_id.tolist()]
    return texts_at(session=session, run_id=run.id, document_id=first.document_id[token_id],
                    position=first.position[token_id])


def run_types(*, session: Session, run: Run, sort: str, descending: bool, text: str | None, offset: int, limit: int,
              cache: ResultCache | None = None) -> dict:
    if sort not in SORT_KEYS:
        raise InvalidInput(f"sort must be one of {', '.join(SORT_KEYS)}, got {sort!r}")
    table = type_table(session=session, run=run, cache=cache)
    listed = np.arange(table.token_id.size)
    if text:
        wanted = text.casefold()
        listed = np.array([i for i, shown in enumerate(table.text) if wanted in shown.casefold()], dtype=np.int64)
    if sort == "text":
        order = sorted(range(listed.size), key=lambda i: table.text[listed[i]], reverse=descending)
    else:  # ties by token id; descending reverses the key, never the tie order
        key = _sort_key(table, sort)[listed]
        order = np.lexsort((table.token_id[listed], -key if descending else key))
    page = listed[np.asarray(order, dtype=np.int64)][offset:offset + limit]
    items = [{"token_id": int(table.token_id[i]), "text": table.text[i], "count": int(table.count[i]),
              "frequency_rank": int(table.frequency_rank[i]),
              **{name: float(round_significant(table.means[name][i])) for name in MEANS}} for i in page.tolist()]
    return {"run_id": run.id, "sort": sort, "descending": descending, "text": text, "items": items,
            "total": int(listed.size), "types": int(table.token_id.size), "offset": offset, "limit": limit}


def _sort_key(table: TypeTableResult, sort: str) -> np.ndarray:
    if sort in table.means:
        return table.means[sort]
    return {"count": table.count, "frequency_rank": table.frequency_rank, "token_id": table.token_id}[sort].astype(np.float64)


def type_occurrences(*, session: Session, run: Run, token_id: int, offset: int, limit: int) -> dict:
    """The occurrences of one token type in document id and position order, items offset … offset + limit,
    with their loss, p and context."""
    positions, logprob, total = {}, {}, 0
    for document_id, row in _documents(session, run, ("token_id", "logprob")):
        found = np.flatnonzero(row["token_id"] == token_id)
        take = found[max(0, offset - total):max(0, offset + limit - total)]
        if take.size:
            positions[document_id], logprob[document_id] = take, row["logprob"][take].astype(np.float64)
        total += found.size
    tokens = tokens_in_text(session=session, run_id=run.id, positions=positions) if positions else {}
    items = [{"document_id": document_id, "position": int(position), "text": token.text,
              "char_start": token.char_start, "char_end": token.char_end, "context_before": token.context_before,
              "context_after": token.context_after, "loss": float(-lp), "p": float(np.exp(lp))}
             for document_id in positions
             for position, token, lp in zip(positions[document_id].tolist(), tokens[document_id], logprob[document_id])]
    return {"run_id": run.id, "token_id": token_id, "items": items, "total": total, "offset": offset, "limit": limit}
