"""Initial schema.

Corpora, models and checkpoints, runs and their per-token scores, the job queue, training
experiments. Written from an autogenerate against app.models and reviewed by hand.

Columns use plain SQLAlchemy types so that this file stays valid whatever happens to the
application's code later: the packed per-token arrays (app.db.packed.PackedArray, a TypeDecorator)
are LargeBinary here (BLOB on SQLite, BYTEA on PostgreSQL). Constraint names follow
app.db.base.NAMING_CONVENTION, so that later batch migrations on SQLite can find them.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

# Parents before children; downgrade drops them in reverse (indexes go with their tables).
TABLES = (
    "corpora", "tokenizer_vocabs", "documents", "experiments", "model_series", "checkpoints",
    "training_metrics", "runs", "jobs", "run_summaries", "token_scores",
)


def upgrade() -> None:
    op.create_table(
        "corpora",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("n_documents", sa.Integer(), nullable=False),
        sa.Column("n_chars", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_corpora"),
        sa.UniqueConstraint("name", name="uq_corpora_name"),
    )

    op.create_table(
        "tokenizer_vocabs",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_tokenizer_vocabs"),
    )

    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("corpus_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("n_chars", sa.Integer(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["corpus_id"], ["corpora.id"], name="fk_documents_corpus_id_corpora", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_documents"),
        sa.UniqueConstraint("corpus_id", "position", name="uq_documents_corpus_id_position"),
    )
    op.create_index("ix_documents_corpus_id", "documents", ["corpus_id"])

    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("train_corpus_id", sa.Integer(), nullable=False),
        sa.Column("eval_corpus_id", sa.Integer(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["eval_corpus_id"], ["corpora.id"], name="fk_experiments_eval_corpus_id_corpora", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["train_corpus_id"], ["corpora.id"], name="fk_experiments_train_corpus_id_corpora", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
    )

    op.create_table(
        "model_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_model_series_experiment_id_experiments", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_series"),
        sa.UniqueConstraint("name", name="uq_model_series_name"),
    )
    op.create_index("ix_model_series_experiment_id", "model_series", ["experiment_id"])

    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("tokens_seen", sa.BigInteger(), nullable=True),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("weights_sha256", sa.String(length=64), nullable=False),
        sa.Column("tokenizer_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("architecture", sa.String(length=100), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"], ["model_series.id"], name="fk_checkpoints_series_id_model_series", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_checkpoints"),
        sa.UniqueConstraint("series_id", "step", name="uq_checkpoints_series_id_step"),
    )
    op.create_index("ix_checkpoints_series_id", "checkpoints", ["series_id"])
    op.create_index("ix_checkpoints_weights_sha256", "checkpoints", ["weights_sha256"])

    op.create_table(
        "training_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("tokens_seen", sa.BigInteger(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=False),
        sa.Column("ce_loss", sa.Float(), nullable=False),
        sa.Column("lr", sa.Float(), nullable=False),
        sa.Column("tokens_per_s", sa.Float(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"], ["model_series.id"], name="fk_training_metrics_series_id_model_series", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_training_metrics"),
        sa.UniqueConstraint("series_id", "step", name="uq_training_metrics_series_id_step"),
    )
    op.create_index("ix_training_metrics_series_id", "training_metrics", ["series_id"])

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("corpus_id", sa.Integer(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("options_key", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"], ["checkpoints.id"], name="fk_runs_checkpoint_id_checkpoints", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["corpus_id"], ["corpora.id"], name="fk_runs_corpus_id_corpora", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint(
            "checkpoint_id", "corpus_id", "options_key", name="uq_runs_checkpoint_id_corpus_id_options_key"
        ),
    )
    op.create_index("ix_runs_checkpoint_id", "runs", ["checkpoint_id"])
    op.create_index("ix_runs_corpus_id", "runs", ["corpus_id"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("tokens_done", sa.Integer(), nullable=False),
        sa.Column("tokens_per_s", sa.Float(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_jobs_run_id_runs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_claimable", "jobs", ["status", "priority", "id"])
    op.create_index("ix_jobs_run_id", "jobs", ["run_id"])

    op.create_table(
        "run_summaries",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.Column("n_documents", sa.Integer(), nullable=False),
        sa.Column("mean_loss", sa.Float(), nullable=False),
        sa.Column("perplexity", sa.Float(), nullable=False),
        sa.Column("ece", sa.Float(), nullable=False),
        sa.Column("brier", sa.Float(), nullable=False),
        sa.Column("top1_accuracy", sa.Float(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_summaries_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_run_summaries"),
    )

    op.create_table(
        "token_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("sum_logprob", sa.Float(), nullable=False),
        sa.Column("max_loss", sa.Float(), nullable=False),
        sa.Column("token_id", sa.LargeBinary(), nullable=True),
        sa.Column("char_start", sa.LargeBinary(), nullable=True),
        sa.Column("char_end", sa.LargeBinary(), nullable=True),
        sa.Column("logprob", sa.LargeBinary(), nullable=True),
        sa.Column("entropy", sa.LargeBinary(), nullable=True),
        sa.Column("rank", sa.LargeBinary(), nullable=True),
        sa.Column("top_ids", sa.LargeBinary(), nullable=True),
        sa.Column("top_logprobs", sa.LargeBinary(), nullable=True),
        sa.Column("sum_p2", sa.LargeBinary(), nullable=True),
        sa.Column("context_len", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_token_scores_document_id_documents", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_token_scores_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_token_scores"),
        sa.UniqueConstraint("run_id", "document_id", name="uq_token_scores_run_id_document_id"),
    )
    op.create_index("ix_token_scores_document_id", "token_scores", ["document_id"])
    op.create_index("ix_token_scores_run_id", "token_scores", ["run_id"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
