"""Checkpoints addressed by content: `checkpoint_files` holds each checkpoint's manifest (every file's
name, size and sha256) and `checkpoints.manifest_sha256` the digest over it, under which workers on
other hosts cache the files they fetch.

Existing checkpoints get no manifest here: hashing every file of every checkpoint would hold the
upgrade (and the API that runs it at start-up) for as long as reading all the weights takes, and a
checkpoint trained on a worker host has no files on the host that migrates. The API records a
checkpoint's manifest the first time it is asked for (app.services.checkpoint_downloads).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "checkpoint_files",
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["checkpoint_id"], ["checkpoints.id"], name="fk_checkpoint_files_checkpoint_id_checkpoints",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("checkpoint_id", "name", name="pk_checkpoint_files"),
    )
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("manifest_sha256", sa.String(length=64), nullable=True))
        batch.create_index("ix_checkpoints_manifest_sha256", ["manifest_sha256"])


def downgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_index("ix_checkpoints_manifest_sha256")
        batch.drop_column("manifest_sha256")
    op.drop_table("checkpoint_files")
