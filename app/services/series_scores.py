"""Statistics across the checkpoints of a series on a corpus, from the stored scores: one document's
or one token's trajectory, transitions between two steps (with their token occurrences, paged) and learned-at steps.
Cartography: series_cartography. Definitions and defaults: docs/formulas.md and app/analytics/.

Corpus-wide statistics stream the corpus once (series_stream) and keep their small result in a
ResultCache when one is given, so the next request with the same parameters is answered from memory.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from app.analytics.learned_at import LearnedAtHistogram, LearnedAtTally, StepHistogram, validate_easy_p
from app.analytics.trajectories import trajectory
from app.analytics.transitions import CELLS, TransitionCounts, TransitionTally, transitions, validate_transition
from app.models.corpus import Document
from app.services.errors import InvalidInput, NotFound
from app.services.checkpoints import load_vocabulary
from app.services.scores import token_texts
from app.services.series_cache import ResultCache, cached
from app.services.series_output import CONTEXT_CHARS, display_texts_at, round_significant, tokens_in_text
from app.services.series_runs import AlignedRuns
from app.services.series_stream import STATISTIC_COLUMNS, read_scores, series_documents, stack_document


@contextmanager
def invalid_input():
    """The analytics refuse bad parameters with ValueError; the user who sent them gets a 422."""
    try:
        yield
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def document_trajectory(*, session: Session, aligned: AlignedRuns, document_id: int) -> dict:
    """One document's per-step log p, rank and entropy ([step][token], rounded) with its tokens' texts
    once, and the log p of the model's top-1 where it is not the true token (see top1_where_ranked)."""
    document = _document_in_corpus(session, aligned, document_id)
    rows, stacked = _document_rows(session, aligned, document_id, ("entropy", "char_start", "char_end", "top_logprobs"))
    first = rows[aligned.run_ids[0]]
    per_step = [rows[run_id] for run_id in aligned.run_ids]
    return {
        "series_id": aligned.series_id, "corpus_id": aligned.corpus_id, "document_id": document_id,
        "n_tokens": stacked.n_tokens, "steps": stacked.steps.tolist(), "run_ids": aligned.run_ids,
        "token_id": stacked.token_id.tolist(), "text": token_texts(document.text, first["char_start"], first["char_end"]),
        "char_start": first["char_start"].tolist(), "char_end": first["char_end"].tolist(),
        "logprob": round_significant(stacked.logprob).tolist(), "rank": stacked.rank.tolist(),
        "entropy": round_significant(np.stack([row["entropy"] for row in per_step])).tolist(),
        "top1_logprob": [top1_where_ranked(row["top_logprobs"], rank, stacked.n_tokens)
                         for row, rank in zip(per_step, stacked.rank)],
    }


def top1_where_ranked(top_logprobs: np.ndarray, rank: np.ndarray, n_tokens: int) -> list[float]:
    """log p of the top-1 prediction (rounded) of the tokens whose rank is above 0, in token order.
    Where the rank is 0 the top-1 is the true token, whose log p the trajectory has already: leaving
    those out keeps the response small (a trained model ranks most tokens first)."""
    top1 = top_logprobs.reshape(n_tokens, -1)[:, 0]
    return round_significant(top1[rank > 0]).tolist()


def token_trajectory(*, session: Session, aligned: AlignedRuns, document_id: int, position: int) -> dict:
    """One token occurrence at every step: p, loss, rank, entropy and the top-k alternatives."""
    document = _document_in_corpus(session, aligned, document_id)
    columns = ("entropy", "char_start", "char_end", "top_ids", "top_logprobs")
    rows, stacked = _document_rows(session, aligned, document_id, columns)
    with invalid_input():
        followed = trajectory(stacked, position)
    per_step = [rows[run_id] for run_id in aligned.run_ids]
    top_k = per_step[0]["top_ids"].size // stacked.n_tokens
    top_ids = [row["top_ids"].reshape(-1, top_k)[position].tolist() for row in per_step]
    vocabulary = load_vocabulary(session=session, fingerprint=aligned.runs[0].tokenizer_fingerprint) or []
    first = per_step[0]
    start, end = int(first["char_start"][position]), int(first["char_end"][position])
    return {
        "series_id": aligned.series_id, "corpus_id": aligned.corpus_id, "document_id": document_id,
        "position": position, "token_id": followed.token_id, "steps": followed.steps, "run_ids": aligned.run_ids,
        "text": display_texts_at(document.text, first["char_start"], first["char_end"], np.array([position]))[0],
        "p": round_significant(followed.p).tolist(), "loss": round_significant(followed.loss).tolist(),
        "rank": followed.rank, "entropy": round_significant([row["entropy"][position] for row in per_step]).tolist(),
        "top_ids": top_ids,
        "top_logprobs": round_significant(np.stack([row["top_logprobs"].reshape(-1, top_k)[position]
                                                    for row in per_step])).tolist(),
        "top_text": [[vocabulary[i] if 0 <= i < len(vocabulary) else "" for i in ids] for ids in top_ids],
        "context_before": document.text[max(0, start - CONTEXT_CHARS):start],
        "context_after": document.text[end:end + CONTEXT_CHARS],
    }


def _document_in_corpus(session: Session, aligned: AlignedRuns, document_id: int) -> Document:
    document = session.get(Document, document_id)
    if document is None or document.corpus_id != aligned.corpus_id:
        raise NotFound(f"document {document_id} is not in corpus {aligned.corpus_id}")
    return document


def _document_rows(session: Session, aligned: AlignedRuns, document_id: int, columns: tuple[str, ...]):
    """({run id: {column: array}}, the stacked document) for one document, checked for alignment."""
    rows = read_scores(session=session, run_ids=aligned.run_ids, columns=(*STATISTIC_COLUMNS, *columns),
                       document_ids=[document_id]).get(document_id, {})
    return rows, stack_document(aligned, document_id, rows)


@dataclass(frozen=True)
class TransitionTable:
    """Transition counts of a corpus, and per document (for paging through a cell's occurrences)."""

    counts: TransitionCounts
    document_id: np.ndarray  # ascending
    cell_counts: np.ndarray  # [documents, cells], cells in CELLS order


def transition_table(*, session: Session, aligned: AlignedRuns, step_a: int, step_b: int, tau: float,
                     cache: ResultCache | None = None) -> TransitionTable:
    with invalid_input():
        validate_transition(aligned.steps, step_a, step_b, tau)
    pair = aligned.at_steps([step_a, step_b])  # the counts depend on these two runs only

    def compute() -> TransitionTable:
        tally = TransitionTally(pair.steps, step_a, step_b, tau)
        document_ids, cells = [], []
        for document_id, document in series_documents(session=session, aligned=pair):
            counts = tally.add(document).counts
            document_ids.append(document_id)
            cells.append([counts[cell] for cell in CELLS])
        return TransitionTable(tally.counts, np.asarray(document_ids, dtype=np.int64),
                               np.asarray(cells, dtype=np.int64).reshape(-1, len(CELLS)))

    return cached(cache, ("transitions", pair.key(), step_a, step_b, float(tau)), compute)


def series_transitions(*, session: Session, aligned: AlignedRuns, step_a: int, step_b: int, tau: float,
                       cache: ResultCache | None = None) -> dict:
    table = transition_table(session=session, aligned=aligned, step_a=step_a, step_b=step_b, tau=tau, cache=cache)
    counts = table.counts
    return {**_transition_question(aligned, step_a, step_b, tau), "total": counts.total,
            "documents": int(table.document_id.size), "counts": counts.counts, "shares": counts.shares(),
            "matrix": counts.matrix()}


def transition_occurrences(*, session: Session, aligned: AlignedRuns, step_a: int, step_b: int, tau: float,
                           cell: str, offset: int, limit: int, cache: ResultCache | None = None) -> dict:
    """The occurrences in one cell, in (document id, position) order, items offset … offset + limit."""
    if cell not in CELLS:
        raise InvalidInput(f"cell must be one of {', '.join(CELLS)} (the state at step a, then at step b), got {cell!r}")
    table = transition_table(session=session, aligned=aligned, step_a=step_a, step_b=step_b, tau=tau, cache=cache)
    pair = aligned.at_steps([step_a, step_b])
    in_cell = table.cell_counts[:, CELLS.index(cell)]
    ends = np.cumsum(in_cell)
    starts = ends - in_cell
    pages = np.flatnonzero((ends > offset) & (starts < offset + limit))
    rows = read_scores(session=session, run_ids=pair.run_ids, columns=STATISTIC_COLUMNS,
                       document_ids=table.document_id[pages].tolist())
    chosen, losses = {}, {}
    for i in pages.tolist():
        document_id = int(table.document_id[i])
        document = stack_document(pair, document_id, rows[document_id])
        positions = transitions(document, step_a, step_b, tau, with_positions=True).positions[cell]
        chosen[document_id] = positions[max(offset, starts[i]) - starts[i]: min(offset + limit, ends[i]) - starts[i]]
        losses[document_id] = (round_significant(document.loss()[:, chosen[document_id]]), document.token_id)
    tokens = tokens_in_text(session=session, run_id=pair.run_ids[0], positions=chosen)
    items = []
    for document_id, positions in chosen.items():
        loss, token_id = losses[document_id]
        for k, (position, token) in enumerate(zip(positions.tolist(), tokens[document_id])):
            items.append({"document_id": document_id, "position": position, "token_id": int(token_id[position]),
                          "text": token.text, "char_start": token.char_start, "char_end": token.char_end,
                          "context_before": token.context_before, "context_after": token.context_after,
                          "loss_a": float(loss[0, k]), "loss_b": float(loss[1, k])})
    return {**_transition_question(aligned, step_a, step_b, tau), "cell": cell, "items": items,
            "total": int(in_cell.sum()), "offset": offset, "limit": limit}


def _transition_question(aligned: AlignedRuns, step_a: int, step_b: int, tau: float) -> dict:
    pair = aligned.at_steps([step_a, step_b])
    return {"steps": aligned.steps.tolist(), "step_a": step_a, "step_b": step_b, "run_a": pair.run_ids[0],
            "run_b": pair.run_ids[1], "tau": float(tau)}


def learned_at_histogram(*, session: Session, aligned: AlignedRuns, tau_easy: float,
                         cache: ResultCache | None = None) -> dict:
    with invalid_input():
        validate_easy_p(tau_easy)

    def compute() -> LearnedAtHistogram:
        tally = LearnedAtTally(aligned.steps, tau_easy)
        for _, document in series_documents(session=session, aligned=aligned):
            tally.add(document)
        return tally.histogram()

    histogram = cached(cache, ("learned-at", aligned.key(), float(tau_easy)), compute)
    return {"steps": histogram.steps, "run_ids": aligned.run_ids, "tau_easy": histogram.tau_easy,
            "overall": _step_histogram(histogram.overall),
            "by_bucket": [{"bucket": b, **_step_histogram(h)} for b, h in enumerate(histogram.by_bucket)]}


def _step_histogram(histogram: StepHistogram) -> dict:
    return {"counts": histogram.counts, "never": histogram.never, "tokens": histogram.tokens}
