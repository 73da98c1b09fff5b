"""Per-token scores: write a shard's documents, read one document's tokens with derived fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, undefer

from app.analytics import focal
from app.analytics.hardness import gltr_bucket
from app.db.packed import pack, stored_dtype
from app.models.checkpoint import Checkpoint, TokenizerVocab
from app.models.corpus import Document
from app.models.run import Run, TokenScores
from app.services.checkpoints import load_vocabulary
from app.services.errors import NotFound
from app.vocab import TOKEN_FIELD_DTYPES, TOKEN_FIELDS, TOP_K_FIELDS

FIELD_DTYPES = {name: stored_dtype(kind) for name, kind in TOKEN_FIELD_DTYPES.items()}


@dataclass
class DocumentScores:
    """What the scorer produces for one document: each field an array of n_tokens values (top-k
    fields n_tokens × top_k)."""

    document_id: int
    top_k: int
    arrays: dict[str, np.ndarray]

    @property
    def n_tokens(self) -> int:
        return int(self.arrays["logprob"].shape[0])


def score_rows(run_id: int, documents: list[DocumentScores]) -> list[dict]:
    """Insert-ready rows (packed bytes), validated: every field present with the right length."""
    rows = []
    for doc in documents:
        missing = [name for name in TOKEN_FIELDS if name not in doc.arrays]
        if missing:
            raise ValueError(f"document {doc.document_id}: missing fields {missing}")
        n = doc.n_tokens
        row = {"run_id": run_id, "document_id": doc.document_id, "n_tokens": n, "top_k": doc.top_k}
        for name in TOKEN_FIELDS:
            values = np.asarray(doc.arrays[name])
            expected = (n, doc.top_k) if name in TOP_K_FIELDS else (n,)
            if values.shape != expected:
                raise ValueError(f"document {doc.document_id}: {name} has shape {values.shape}, expected {expected}")
            row[name] = pack(values.reshape(-1), FIELD_DTYPES[name])
        logprob = doc.arrays["logprob"]
        row["sum_logprob"] = float(np.sum(logprob, dtype=np.float64))
        row["max_loss"] = float(-logprob.min()) if n else 0.0
        rows.append(row)
    return rows


def store_scores(*, session: Session, run_id: int, documents: list[DocumentScores]) -> int:
    """Insert documents' scores in one executemany; returns the number of tokens written."""
    rows = score_rows(run_id, documents)
    if rows:
        session.execute(insert(TokenScores), rows)
    return sum(r["n_tokens"] for r in rows)


def token_texts(text: str, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    """Each token's display text: its character span, minus what earlier tokens already showed.

    Byte-level BPE splits a multi-byte character (é, 😀) into several tokens that all report the
    whole character as their span; the first shows it, the rest show "" — so the texts concatenate
    to exactly the document (minus any characters no token covers).
    """
    shown_until = 0
    texts = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        start = max(start, shown_until)
        texts.append(text[start:end] if end > start else "")
        shown_until = max(shown_until, end)
    return texts


def document_tokens_key(*, session: Session, run: Run, document: Document, gamma: float) -> tuple:
    """What a document's tokens response depends on: the score row (written once, never changed), γ,
    and whether the tokenizer's vocabulary (the top-k texts) is stored yet. NotFound before scoring."""
    # One round trip (a PostgreSQL server may be a network hop away): the row and the vocabulary's presence.
    found = session.execute(
        select(TokenScores.id, TokenizerVocab.fingerprint)
        .join(Run, Run.id == TokenScores.run_id)
        .join(Checkpoint, Checkpoint.id == Run.checkpoint_id)
        .outerjoin(TokenizerVocab, TokenizerVocab.fingerprint == Checkpoint.tokenizer_fingerprint)
        .where(TokenScores.run_id == run.id, TokenScores.document_id == document.id)
    ).first()
    if found is None:
        raise NotFound(f"document {document.id} has not been scored by run {run.id} yet")
    return "tokens", found[0], gamma, found[1] is not None


def document_tokens(*, session: Session, run: Run, document: Document, gamma: float) -> dict:
    """Every token of one document of the run's corpus: the stored fields (top-k ones as n × k
    arrays), the display texts, and the fields derived for focal γ = gamma. Numbers stay numpy arrays,
    in float32 (derived ones too: they come from the stored float32 log p), for the route's encoder."""
    scores = session.scalar(
        select(TokenScores)
        .where(TokenScores.run_id == run.id, TokenScores.document_id == document.id)
        .options(undefer("*"))
    )
    if scores is None:
        raise NotFound(f"document {document.id} has not been scored by run {run.id} yet")
    n, k = scores.n_tokens, scores.top_k
    stored = {name: getattr(scores, name).reshape(n, k) if name in TOP_K_FIELDS else getattr(scores, name)
              for name in TOKEN_FIELDS}
    logprob = scores.logprob.astype(np.float64)
    derived = {
        "loss": -logprob, "p": focal.prob(logprob), "focal_weight": focal.focal_weight(logprob, gamma),
        "focal_loss": focal.focal_loss(logprob, gamma), "gradient_multiplier": focal.gradient_multiplier(logprob, gamma),
    }
    return {
        "run_id": run.id, "document_id": document.id, "n_tokens": n, "top_k": k, "gamma": gamma, **stored,
        **{name: values.astype(np.float32) for name, values in derived.items()},
        "text": token_texts(document.text, scores.char_start, scores.char_end),
        "gltr_bucket": gltr_bucket(scores.rank),
        "top_text": _top_texts(session=session, run=run, top_ids=stored["top_ids"], k=k),
    }


def _top_texts(*, session: Session, run: Run, top_ids: np.ndarray, k: int) -> list[list[str]]:
    """Display text of each top-k alternative; empty until a worker has stored the tokenizer's vocabulary."""
    vocabulary = load_vocabulary(session=session, fingerprint=run.checkpoint.tokenizer_fingerprint)
    if vocabulary is None:
        return [[""] * k for _ in top_ids]
    # One numpy gather instead of a Python loop per alternative (81,920 lookups for 2,048 tokens × top-16).
    texts = np.array([*vocabulary, ""], dtype=object)
    ids = top_ids.astype(np.int64).reshape(len(top_ids), k)
    return texts[np.where((ids >= 0) & (ids < len(vocabulary)), ids, len(vocabulary))].tolist()
