"""Model series and their checkpoints."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.base import MAX_INTEGER
from app.models.checkpoint import Checkpoint, ModelSeries, TokenizerVocab
from app.schemas.checkpoint import CheckpointOut, SeriesOut
from app.services import checkpoint_files
from app.services.checkpoint_downloads import add_manifest
from app.services.errors import Conflict, Forbidden, InvalidInput, NotFound, get_or_404


def ensure_series(*, session: Session, name: str, description: str = "") -> ModelSeries:
    series = session.scalar(select(ModelSeries).where(ModelSeries.name == name))
    if series is None:
        series = ModelSeries(name=name, description=description)
        session.add(series)
        session.flush()
    return series


def check_under_roots(path: Path, roots: list[Path], *, entries: bool = True) -> None:
    """Refuse API registrations outside the configured model roots, symlinks resolved first: the
    path itself and, for a folder with `entries`, every entry in it at any depth (a folder inside the
    roots whose files are links to files elsewhere would otherwise make the server read, describe and
    serve those files: GET /checkpoints/{id}/files/{name})."""
    resolved_roots = [root.expanduser().resolve() for root in roots]

    def inside(candidate: Path) -> bool:
        resolved = candidate.resolve()
        return any(resolved.is_relative_to(root) for root in resolved_roots)

    path = path.expanduser()
    allowed = ", ".join(str(r) for r in roots)
    if not inside(path):
        raise Forbidden(f"{path}: outside the server's model roots ({allowed}); set FOCALSCOPE_MODEL_ROOTS")
    if entries and path.is_dir():
        for entry in sorted(path.rglob("*")):
            if not inside(entry):
                raise Forbidden(f"{entry}: a link to a file outside the server's model roots ({allowed})")


def register_checkpoint(
    *, session: Session, path: Path, series: str | None = None, step: int = 0,
    tokens_seen: int | None = None, meta: dict | None = None, files: checkpoint_files.CheckpointFiles | None = None,
    location: str | None = None,
) -> tuple[Checkpoint, bool]:
    """Register a checkpoint; returns (checkpoint, created). Registering the same weights at the same
    series and step again returns the existing row; different weights at a taken step conflict.
    `files`: the path inspected already (hashing comes before the first statement either way).
    `location`: where the checkpoint lies when that is not `path` (a URL whose copy was inspected)."""
    if not 0 <= step <= MAX_INTEGER:
        raise InvalidInput(f"step {step}: a checkpoint's step is between 0 and {MAX_INTEGER}")
    files = files or checkpoint_files.inspect(path)
    series_row = ensure_series(session=session, name=series or files.path.stem)
    existing = session.scalar(
        select(Checkpoint).where(Checkpoint.series_id == series_row.id, Checkpoint.step == step)
    )
    if existing is not None:
        if existing.weights_sha256 == files.weights_sha256:
            if existing.manifest_sha256 is None:  # registered before manifests: it has one now
                add_manifest(existing, files.manifest)
            return existing, False
        raise Conflict(f"series {series_row.name!r} already has a different checkpoint at step {step}")
    checkpoint = Checkpoint(
        series_id=series_row.id, step=step, tokens_seen=tokens_seen, format=files.format,
        path=location or str(files.path), weights_sha256=files.weights_sha256,
        tokenizer_fingerprint=files.tokenizer_fingerprint, architecture=files.architecture, meta=meta or {},
    )
    add_manifest(checkpoint, files.manifest)
    session.add(checkpoint)
    session.flush()
    return checkpoint, True


def get_checkpoint(*, session: Session, checkpoint_id: int) -> Checkpoint:
    return get_or_404(Checkpoint, checkpoint_id, session=session, thing="checkpoint")


def get_series(*, session: Session, series_id: int) -> ModelSeries:
    return get_or_404(ModelSeries, series_id, session=session, thing="series")


def find_checkpoint(*, session: Session, ref: str) -> Checkpoint:
    """By id, by series name (its latest step) or by `series@step` (the CLI accepts all three)."""
    if ref.isdigit():
        return get_checkpoint(session=session, checkpoint_id=int(ref))
    name, _, step = ref.rpartition("@") if "@" in ref else (ref, "", "")
    query = select(Checkpoint).join(ModelSeries).where(ModelSeries.name == name)
    if step:
        if not step.isdigit() or int(step) > MAX_INTEGER:
            raise NotFound(f"bad checkpoint reference {ref!r}: expected SERIES@STEP")
        query = query.where(Checkpoint.step == int(step))
    checkpoint = session.scalar(query.order_by(Checkpoint.step.desc()).limit(1))
    if checkpoint is None:
        raise NotFound(f"no checkpoint {ref!r}")
    return checkpoint


def list_checkpoints(
    *, session: Session, offset: int, limit: int, series_id: int | None = None
) -> tuple[list[Checkpoint], int]:
    query = select(Checkpoint)
    count = select(func.count(Checkpoint.id))
    if series_id is not None:
        query, count = query.where(Checkpoint.series_id == series_id), count.where(Checkpoint.series_id == series_id)
    items = session.scalars(query.order_by(Checkpoint.series_id, Checkpoint.step).offset(offset).limit(limit)).all()
    return list(items), session.scalar(count) or 0


def checkpoint_out(checkpoint: Checkpoint, *, show_path: bool) -> CheckpointOut:
    """A checkpoint as the API shows it: its columns and its series' name; its server-side path only
    with show_path (admin callers)."""
    columns = _columns(checkpoint)
    if not show_path:
        columns["path"] = None
    return CheckpointOut.model_validate({**columns, "series_name": checkpoint.series.name})


def _columns(row) -> dict:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def list_series(*, session: Session, offset: int, limit: int) -> tuple[list[SeriesOut], int]:
    """Series, newest first, each with its number of checkpoints; and how many series there are."""
    counts = (
        select(ModelSeries, func.count(Checkpoint.id))
        .outerjoin(Checkpoint)
        .group_by(ModelSeries.id)
        .order_by(ModelSeries.id.desc())
        .offset(offset)
        .limit(limit)
    )
    items = [SeriesOut.model_validate({**_columns(series), "n_checkpoints": n}) for series, n in session.execute(counts)]
    return items, session.scalar(select(func.count(ModelSeries.id))) or 0


def store_vocabulary(*, session: Session, fingerprint: str, tokens: list[str]) -> None:
    """Store a tokenizer's display texts once; two workers racing to do it is fine."""
    if session.get(TokenizerVocab, fingerprint) is not None:
        return
    try:
        with session.begin_nested():
            session.add(TokenizerVocab(fingerprint=fingerprint, size=len(tokens), tokens=tokens))
    except IntegrityError:
        pass


def load_vocabulary(*, session: Session, fingerprint: str) -> list[str] | None:
    row = session.get(TokenizerVocab, fingerprint)
    return None if row is None else list(row.tokens)
