"""Links between rows become keys: a series' train job is `model_series.job_id` (was `meta["job_id"]`),
and an experiment's jobs and series are found through `model_series.experiment_id` (were the lists
`config["job_ids"]` and `config["series"]`).

The data moves with the schema, both ways: upgrading fills the column from the JSON and removes the
JSON copies; downgrading writes them back from the keys. A `meta["job_id"]` whose job was deleted
becomes NULL (what the key's ON DELETE SET NULL would have made of it).

Tables here are lightweight `sa.table` stand-ins with plain types, so that this file stays valid
whatever happens to app.models later.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

SERIES = sa.table("model_series", sa.column("id", sa.Integer), sa.column("name", sa.String),
                  sa.column("experiment_id", sa.Integer), sa.column("job_id", sa.Integer), sa.column("meta", sa.JSON))
EXPERIMENTS = sa.table("experiments", sa.column("id", sa.Integer), sa.column("config", sa.JSON))
JOBS = sa.table("jobs", sa.column("id", sa.Integer))


def upgrade() -> None:
    with op.batch_alter_table("model_series") as batch:
        batch.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
        batch.create_index("ix_model_series_job_id", ["job_id"])
        batch.create_foreign_key("fk_model_series_job_id_jobs", "jobs", ["job_id"], ["id"], ondelete="SET NULL")
    bind = op.get_bind()
    rows = bind.execute(sa.select(SERIES.c.id, SERIES.c.meta)).all()
    linked = {row.id: row.meta["job_id"] for row in rows if isinstance((row.meta or {}).get("job_id"), int)}
    existing = set(bind.scalars(sa.select(JOBS.c.id).where(JOBS.c.id.in_(sorted(set(linked.values()))))))
    for row in rows:
        if row.meta and "job_id" in row.meta:
            meta = {key: value for key, value in row.meta.items() if key != "job_id"}
            job_id = linked.get(row.id) if linked.get(row.id) in existing else None
            bind.execute(SERIES.update().where(SERIES.c.id == row.id).values(job_id=job_id, meta=meta))
    for experiment_id, config in bind.execute(sa.select(EXPERIMENTS.c.id, EXPERIMENTS.c.config)).all():
        if config and ("job_ids" in config or "series" in config):
            kept = {key: value for key, value in config.items() if key not in ("job_ids", "series")}
            bind.execute(EXPERIMENTS.update().where(EXPERIMENTS.c.id == experiment_id).values(config=kept))


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(SERIES).order_by(SERIES.c.id)).all()
    for row in rows:
        if row.job_id is not None:
            meta = {**(row.meta or {}), "job_id": row.job_id}
            bind.execute(SERIES.update().where(SERIES.c.id == row.id).values(meta=meta))
    for experiment_id, config in bind.execute(sa.select(EXPERIMENTS.c.id, EXPERIMENTS.c.config)).all():
        members = [row for row in rows if row.experiment_id == experiment_id]
        config = {**(config or {}), "series": [row.name for row in members],
                  "job_ids": [row.job_id for row in members if row.job_id is not None]}
        bind.execute(EXPERIMENTS.update().where(EXPERIMENTS.c.id == experiment_id).values(config=config))
    with op.batch_alter_table("model_series") as batch:
        batch.drop_constraint("fk_model_series_job_id_jobs", type_="foreignkey")
        batch.drop_index("ix_model_series_job_id")
        batch.drop_column("job_id")
