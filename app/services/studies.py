"""The dashboard's read model of studies: the list (grouped from the experiments' `study` config) and
one study's across-seed results as the Study page shows them — study_view's numbers and the report's
table cells (app.services.study_table), so the page and `focalscope report` cannot disagree.

A study whose jobs are still running is served as it stands, flagged `in_progress`: seeds finish one
after another over minutes or hours, and the seeds done so far are worth seeing (the report does the
same); a 409 would hide them until the last job ends."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.analytics.distribution import NUCLEUS_LEVELS
from app.models.training import Experiment
from app.schemas.experiments import ExperimentOut
from app.schemas.studies import (
    CollapseFlag, Continuation, DeltaCell, HeldoutCurve, SamplePrompt, Setting, StudyMember, StudyOut, StudyRow,
    StudySummary,
)
from app.services import study_table
from app.services.errors import NotFound
from app.services.experiments import describe_experiments
from app.services.study import BASELINE, MAX_EXPERIMENTS_SCANNED, loss_label, study_view
from app.vocab import LIVE_STATUSES


def _study_name(experiment: Experiment) -> str | None:
    return ((experiment.config or {}).get("study") or {}).get("name")


def _members_by_study(session: Session) -> dict[str, list[Experiment]]:
    """Study name -> its experiments (id order); experiments outside a study are left out."""
    scanned = session.scalars(select(Experiment).order_by(Experiment.id).limit(MAX_EXPERIMENTS_SCANNED)).all()
    found: dict[str, list[Experiment]] = {}
    for experiment in scanned:
        if (name := _study_name(experiment)) is not None:
            found.setdefault(name, []).append(experiment)
    return found


def _finished(described: list[ExperimentOut]) -> bool:
    """No training job queued or running and no checkpoint waiting for its scoring run."""
    for e in described:
        unscored = 0 if e.eval_corpus_id is None else e.status.checkpoints - e.status.scored - e.status.scoring_failed
        if unscored > 0 or any(status in LIVE_STATUSES for status in e.status.jobs):
            return False
    return True


def list_studies(*, session: Session, offset: int, limit: int) -> tuple[list[StudySummary], int]:
    """Newest first (by their first experiment), with their seeds, losses and whether all is done."""
    groups = sorted(_members_by_study(session).items(), key=lambda item: item[1][0].id, reverse=True)
    items = []
    for name, members in groups[offset:offset + limit]:
        study = members[0].config["study"]
        losses = list(dict.fromkeys(loss_label(loss) for e in members for loss in e.config.get("losses", [])))
        items.append(StudySummary(
            name=name, seeds=study.get("seeds") or [e.config.get("seed", 0) for e in members], losses=losses,
            experiments=len(members), created_at=members[0].created_at,
            done=_finished(describe_experiments(session=session, experiments=members))))
    return items, len(groups)


def get_study(*, session: Session, name: str) -> StudyOut:
    members = _members_by_study(session).get(name)
    if not members:
        raise NotFound(f"no study {name!r}")
    view = study_view(session=session, ref=name)
    return StudyOut(
        name=name, in_progress=not _finished(describe_experiments(session=session, experiments=members)),
        seeds=view["study"].get("seeds") or [e.config.get("seed", 0) for e in members],
        command=view["study"].get("command", ""), versions=view["study"].get("versions") or {},
        settings=[Setting(name=k, value=v) for k, v in study_table.settings_rows(view)],
        experiments=[StudyMember(id=e.id, name=e.name, seed=e.config.get("seed")) for e in members],
        baseline=BASELINE, table_header=study_table.TABLE_HEADER, delta_header=study_table.DELTA_HEADER[1:],
        rows=_rows(view), nucleus_levels=list(NUCLEUS_LEVELS), heldout=[
            HeldoutCurve(loss=loss, step=curve["steps"], mean=[m["mean"] for m in curve["stats"]],
                         sd=[m["sd"] for m in curve["stats"]])
            for loss, curve in study_table.heldout_by_step(view).items()],
        samples=_samples(view))


def _rows(view: dict) -> list[StudyRow]:
    text_rows = study_table.table_rows(view)[1:]
    return [StudyRow(
        loss=loss, cells=cells, metrics=metrics,
        collapse=[CollapseFlag(seed=seed, kind=kind, step=step)
                  for seed, kind, step in study_table.collapse_flags(view, loss)],
        deltas=[DeltaCell(text=text, noise=noise) for text, noise in study_table.delta_cells(metrics)]
        if "vs_baseline" in metrics["ce"] else None)
        for (loss, metrics), cells in zip(view["table"].items(), text_rows)]


def _samples(view: dict) -> list[SamplePrompt]:
    """The first seed's samples, prompt by prompt, each loss's continuation (as the report lists them)."""
    series = [s for s in view["comparisons"][0].series if s.samples] if view["comparisons"] else []
    if not series:
        return []
    return [SamplePrompt(prompt=sample.prompt, continuations=[
        Continuation(loss=loss_label(s.loss) if s.loss else s.name, text=s.samples[i].continuation)
        for s in series if i < len(s.samples)]) for i, sample in enumerate(series[0].samples)]
