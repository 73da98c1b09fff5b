"""Store token_scores arrays uncompressed on PostgreSQL.

PostgreSQL compresses large bytea values (pglz) by default. Packed float32/int32 arrays do not
compress, so the server spends most of an insert trying: measured 1.35M → 1.6–2.2M tokens/s of
ingest with STORAGE EXTERNAL (out of line, uncompressed). SQLite stores blobs as they are.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PACKED_COLUMNS = ("token_id", "char_start", "char_end", "logprob", "entropy", "rank", "top_ids", "top_logprobs",
                  "sum_p2", "context_len")


def _set_storage(mode: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in PACKED_COLUMNS:
        op.execute(f'ALTER TABLE token_scores ALTER COLUMN "{column}" SET STORAGE {mode}')


def upgrade() -> None:
    _set_storage("EXTERNAL")


def downgrade() -> None:
    _set_storage("EXTENDED")
