from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, utcnow


class ModelSeries(Base):
    """A sequence of checkpoints of one model (one training run, or a single released model)."""

    __tablename__ = "model_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Set for series trained by focalscope: the experiment they belong to and how they were trained.
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # The train job that writes (or wrote) the series. use_alter: jobs -> runs -> checkpoints ->
    # model_series -> jobs is a cycle, so this key is added after the tables are created.
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL", use_alter=True), nullable=True, index=True
    )
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    checkpoints: Mapped[list[Checkpoint]] = relationship(
        back_populates="series", cascade="all, delete-orphan", order_by="Checkpoint.step"
    )


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("series_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("model_series.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    tokens_seen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    format: Mapped[str] = mapped_column(String(20))  # app.vocab.CHECKPOINT_FORMATS
    # Server-side location: a safetensors directory or a .gguf file.
    path: Mapped[str] = mapped_column(Text)
    weights_sha256: Mapped[str] = mapped_column(String(64), index=True)
    # Hash of the tokenizer's files or GGUF tokenizer fields: checkpoints compare token by token
    # only when their fingerprints match.
    tokenizer_fingerprint: Mapped[str] = mapped_column(String(64))
    architecture: Mapped[str] = mapped_column(String(100), default="")
    # Training metadata (loss spec, gamma, lr, train loss, ...) as written by the trainer.
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    # The digest of its manifest (app.services.checkpoint_manifest): what a worker on another host
    # caches the fetched files under. None until the manifest is recorded: checkpoints registered
    # before manifests existed get one when it is first asked for.
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    series: Mapped[ModelSeries] = relationship(back_populates="checkpoints")
    files: Mapped[list[CheckpointFile]] = relationship(
        back_populates="checkpoint", cascade="all, delete-orphan", order_by="CheckpointFile.name"
    )


class CheckpointFile(Base):
    """One entry of a checkpoint's manifest: a file of the checkpoint, by its name inside it."""

    __tablename__ = "checkpoint_files"

    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(500), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))

    checkpoint: Mapped[Checkpoint] = relationship(back_populates="files")


class TokenizerVocab(Base):
    """Display text of every token id of one tokenizer, written by the first worker that loads it, so
    that the API (which never loads a tokenizer) can show top-k alternatives as text."""

    __tablename__ = "tokenizer_vocabs"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
