from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow


class Experiment(Base):
    """Several training series (one per loss) on one corpus, scored on one held-out corpus."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    train_corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    eval_corpus_id: Mapped[int | None] = mapped_column(ForeignKey("corpora.id", ondelete="SET NULL"), nullable=True)
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TrainingMetric(Base):
    """One point of a training series' loss curve (logged every few steps by the trainer)."""

    __tablename__ = "training_metrics"
    __table_args__ = (UniqueConstraint("series_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("model_series.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    tokens_seen: Mapped[int] = mapped_column(BigInteger)
    # The loss being optimised (focal, poly...) and plain cross-entropy on the same batch.
    loss: Mapped[float] = mapped_column(Float)
    ce_loss: Mapped[float] = mapped_column(Float)
    lr: Mapped[float] = mapped_column(Float)
    tokens_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
