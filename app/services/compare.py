"""Model A against model B on one corpus: the corpus-wide comparison (one streamed pass over both runs'
scores, kept in the ResultCache) and one document's units with both runs' tokens.

Δ = log p_B − log p_A per unit (a token, or a character-span segment across tokenizers); definitions in
docs/formulas.md and app/analytics/{alignment,comparison}.py.
"""

from __future__ import annotations

import math

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.analytics.alignment import ALIGN_TOKEN
from app.analytics.comparison import DEFAULT_EXTREMES, CompareTally
from app.models.corpus import Document
from app.models.run import Run, TokenScores
from app.services.checkpoints import load_vocabulary
from app.services.compare_runs import COMPARE_COLUMNS, RunPair, calibration_of, document_alignment
from app.services.errors import NotFound
from app.services.scores import token_texts
from app.services.series_cache import ResultCache, cached
from app.services.series_output import CONTEXT_CHARS, document_texts, round_significant
from app.services.series_stream import document_batches, read_scores

MAX_EXTREMES = 200


def compare_summary(*, session: Session, pair: RunPair, extremes: int = DEFAULT_EXTREMES,
                    cache: ResultCache | None = None) -> dict:
    """Totals, Δ by rank and frequency bucket, where B wins and loses most, and both runs' calibration."""

    def compute() -> dict:
        tally = CompareTally(extremes)
        for document_id, alignment, row_a, row_b in _aligned_documents(session, pair):
            tally.add(document_id, alignment, row_a["token_id"], row_a["rank"], row_a["logprob"],
                      row_b["token_id"].size)
        n_chars = session.scalar(select(func.coalesce(func.sum(Document.n_chars), 0))
                                 .where(Document.corpus_id == pair.a.corpus_id))
        wins, losses = tally.wins.items(), tally.losses.items()
        _with_context(session, wins + losses)
        result = tally.result()
        return {**result, "alignment": _alignment_name(result["documents"]), "n_chars": int(n_chars),
                "bits_per_char_a": _bits_per_char(result["total_logprob_a"], n_chars),
                "bits_per_char_b": _bits_per_char(result["total_logprob_b"], n_chars),
                "b_wins_most": wins, "b_loses_most": losses}

    summary = cached(cache, ("compare", pair.key(), extremes), compute)
    return {"run_a": pair.describe(pair.a), "run_b": pair.describe(pair.b), "corpus_id": pair.a.corpus_id, **summary,
            "calibration_a": calibration_of(session=session, run=pair.a),
            "calibration_b": calibration_of(session=session, run=pair.b)}


def _aligned_documents(session: Session, pair: RunPair):
    """(document id, alignment, A's row, B's row) for every scored document, in id order, a batch per query."""
    for first, last in document_batches(session, pair.run_ids):
        rows = read_scores(session=session, run_ids=pair.run_ids, columns=COMPARE_COLUMNS,
                           where=TokenScores.document_id.between(first, last))
        for document_id in sorted(rows):
            alignment = document_alignment(pair, document_id, rows[document_id])
            yield document_id, alignment, rows[document_id][pair.a.id], rows[document_id][pair.b.id]


def _alignment_name(documents: dict[str, int]) -> str:
    used = [kind for kind, count in documents.items() if count]
    return used[0] if len(used) == 1 else ("mixed" if used else ALIGN_TOKEN)


def _bits_per_char(total_logprob: float, n_chars: int) -> float | None:
    """Loss per character in bits: comparable across tokenizers, unlike loss per token."""
    return -total_logprob / (n_chars * math.log(2)) if n_chars else None


def _with_context(session: Session, units: list[dict]) -> None:
    texts = document_texts(session=session, document_ids={u["document_id"] for u in units})
    for unit in units:
        text, start, end = texts[unit["document_id"]], unit["char_start"], unit["char_end"]
        unit.update(text=text[start:end], context_before=text[max(0, start - CONTEXT_CHARS):start],
                    context_after=text[end:end + CONTEXT_CHARS])


def compare_document(*, session: Session, pair: RunPair, document_id: int) -> dict:
    """One document's units (Δ, span, text, both runs' Σ log p) and each run's tokens with their unit,
    p, rank and top-k, for the Compare view's colours and tooltips."""
    document = session.get(Document, document_id)
    if document is None or document.corpus_id != pair.a.corpus_id:
        raise NotFound(f"document {document_id} is not in corpus {pair.a.corpus_id}")
    columns = (*COMPARE_COLUMNS, "top_ids", "top_logprobs")
    rows = read_scores(session=session, run_ids=pair.run_ids, columns=columns, document_ids=[document_id])
    alignment = document_alignment(pair, document_id, rows.get(document_id, {}))
    row_a, row_b = rows[document_id][pair.a.id], rows[document_id][pair.b.id]
    units = {
        "char_start": alignment.char_start.tolist(), "char_end": alignment.char_end.tolist(),
        "text": token_texts(document.text, alignment.char_start, alignment.char_end),
        "logprob_a": alignment.logprob_a.tolist(), "logprob_b": alignment.logprob_b.tolist(),
        "delta": alignment.delta.tolist(),
        "delta_p": (np.exp(alignment.logprob_b) - np.exp(alignment.logprob_a)).tolist()
        if alignment.kind == ALIGN_TOKEN else None,
    }
    return {"run_a": pair.describe(pair.a), "run_b": pair.describe(pair.b), "document_id": document_id,
            "alignment": alignment.kind, "n_units": alignment.n_units, "total_delta": float(alignment.delta.sum()),
            "units": units,
            "a": _run_tokens(session, pair.a, document.text, row_a, alignment.segment_a),
            "b": _run_tokens(session, pair.b, document.text, row_b, alignment.segment_b)}


def _run_tokens(session: Session, run: Run, text: str, row: dict[str, np.ndarray], unit: np.ndarray) -> dict:
    n = row["token_id"].size
    k = row["top_ids"].size // n if n else 0
    top_ids = row["top_ids"].reshape(n, k)
    vocabulary = load_vocabulary(session=session, fingerprint=run.checkpoint.tokenizer_fingerprint) or []
    return {
        "run_id": run.id, "n_tokens": n, "unit": unit.tolist(), "token_id": row["token_id"].tolist(),
        "text": token_texts(text, row["char_start"], row["char_end"]),
        "logprob": round_significant(row["logprob"]).tolist(), "rank": row["rank"].tolist(),
        "top_ids": top_ids.tolist(), "top_logprobs": round_significant(row["top_logprobs"].reshape(n, k)).tolist(),
        "top_text": [[vocabulary[i] if 0 <= i < len(vocabulary) else "" for i in ids] for ids in top_ids.tolist()],
    }
