from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from app.db.base import Base, utcnow
from app.db.packed import PackedArray
from app.models.checkpoint import Checkpoint
from app.models.corpus import Corpus
from app.vocab import TOKEN_FIELD_DTYPES


class Run(Base):
    """One checkpoint scored on one corpus with fixed options. Enqueuing it twice returns the first."""

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("checkpoint_id", "corpus_id", "options_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id", ondelete="CASCADE"), index=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"), index=True)
    options: Mapped[dict] = mapped_column(JSON)
    # Canonical JSON of `options`: the uniqueness key (JSON columns do not compare portably).
    options_key: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    checkpoint: Mapped[Checkpoint] = relationship()
    corpus: Mapped[Corpus] = relationship()


def _packed(field: str):
    """A deferred packed-array column for a per-token field: lists of documents never load it."""
    return deferred(mapped_column(PackedArray(TOKEN_FIELD_DTYPES[field])))


class TokenScores(Base):
    """Every per-token field of one document under one run, as packed little-endian arrays.

    Top-k columns hold n_tokens * top_k values, row-major. Loss, p and focal weights are derived
    on read, for any gamma.
    """

    __tablename__ = "token_scores"
    __table_args__ = (UniqueConstraint("run_id", "document_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    n_tokens: Mapped[int] = mapped_column(Integer)
    top_k: Mapped[int] = mapped_column(Integer)
    # Per-document aggregates, so that document lists never unpack arrays.
    sum_logprob: Mapped[float] = mapped_column(Float)
    max_loss: Mapped[float] = mapped_column(Float)

    # One column per app.vocab.TOKEN_FIELDS entry, typed from TOKEN_FIELD_DTYPES (a test checks that
    # the columns and the list agree).
    token_id = _packed("token_id")
    char_start = _packed("char_start")
    char_end = _packed("char_end")
    logprob = _packed("logprob")
    entropy = _packed("entropy")
    rank = _packed("rank")
    top_ids = _packed("top_ids")
    top_logprobs = _packed("top_logprobs")
    sum_p2 = _packed("sum_p2")
    context_len = _packed("context_len")


class RunSummary(Base):
    """Aggregates of a finished run (histograms, calibration, GLTR buckets...), as computed by the
    `summarize` job: list and overview pages read this, never the token arrays."""

    __tablename__ = "run_summaries"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    n_tokens: Mapped[int] = mapped_column(Integer)
    n_documents: Mapped[int] = mapped_column(Integer)
    mean_loss: Mapped[float] = mapped_column(Float)
    perplexity: Mapped[float] = mapped_column(Float)
    ece: Mapped[float] = mapped_column(Float)
    brier: Mapped[float] = mapped_column(Float)
    top1_accuracy: Mapped[float] = mapped_column(Float)
    stats: Mapped[dict] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    version: Mapped[str] = mapped_column(String(20), default="1")
