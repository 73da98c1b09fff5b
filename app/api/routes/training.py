"""Training jobs, experiments (one series per loss) and their comparison."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import ExperimentDep, PagingDep, SeriesDep, SessionDep, SettingsDep
from app.api.openapi import errors
from app.schemas.common import Page
from app.schemas.experiments import ExperimentComparison, ExperimentOut, TrainingCurve
from app.schemas.job import JobOut
from app.schemas.training import (
    ExperimentCreate, LossForm, SaveSchedule, SaveStepsOut, TrainingJobCreate, TrainingRequest,
)
from app.services import experiments, training
from app.training_specs import LOSS_FORMS, PRESETS, Preset

router = APIRouter(tags=["training"])
MaxPoints = Annotated[int, Query(ge=1, le=experiments.MAX_CURVE_POINTS, description="Curve points to return at most.")]


@router.get("/training/presets", response_model=list[Preset])
def list_presets():
    """Model presets with their measured parameter counts."""
    return list(PRESETS.values())


@router.get("/training/losses", response_model=list[LossForm])
def list_losses():
    """Loss spec forms accepted by training jobs and experiments."""
    return [LossForm(name=name, usage=usage) for name, (_, usage) in LOSS_FORMS.items()]


@router.get("/training/save-steps", response_model=SaveStepsOut)
def save_steps(schedule: Annotated[SaveSchedule, Query()]):
    """The steps a training run checkpoints (and scores) at: 0, every save_every, and the last."""
    return SaveStepsOut(steps=schedule.steps, save_every=schedule.save_every, save_steps=schedule.save_steps())


@router.post("/training/jobs", response_model=JobOut, status_code=status.HTTP_201_CREATED, responses=errors(409))
def create_training_job(body: TrainingJobCreate, session: SessionDep, settings: SettingsDep):
    """Train one model with one loss; checkpoints become a series and are scored on the eval corpus."""
    job = training.enqueue_training(session=session, request=TrainingRequest(**body.model_dump()), settings=settings)
    session.commit()
    return job


@router.post("/experiments", response_model=ExperimentOut, status_code=status.HTTP_201_CREATED, responses=errors(409))
def create_experiment(body: ExperimentCreate, session: SessionDep, settings: SettingsDep):
    """Train one series per loss, same seed and settings, each scored on the eval corpus."""
    experiment = training.create_experiment(session=session, settings=settings, request=body)
    session.commit()
    return experiments.describe_experiments(session=session, experiments=[experiment])[0]


@router.get("/experiments", response_model=Page[ExperimentOut])
def list_experiments(session: SessionDep, paging: PagingDep):
    """Experiments with a status summary each (train jobs, steps, checkpoints saved and scored)."""
    items, total = experiments.list_experiments(session=session, offset=paging.offset, limit=paging.limit)
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)


@router.get("/experiments/{experiment_id}", response_model=ExperimentOut)
def get_experiment(experiment: ExperimentDep, session: SessionDep):
    return experiments.describe_experiments(session=session, experiments=[experiment])[0]


@router.get("/experiments/{experiment_id}/comparison", response_model=ExperimentComparison)
def experiment_comparison(experiment: ExperimentDep, session: SessionDep,
                          max_points: MaxPoints = experiments.DEFAULT_CURVE_POINTS):
    """Per loss and checkpoint: held-out loss, perplexity, ECE, Brier, top-1 accuracy, rare vs frequent
    token loss, easy-token share; plus training curves and each series' job progress."""
    return experiments.experiment_comparison(session=session, experiment_id=experiment.id, max_points=max_points)


@router.get("/series/{series_id}/curve", response_model=TrainingCurve)
def training_curve(series: SeriesDep, session: SessionDep, max_points: MaxPoints = experiments.DEFAULT_CURVE_POINTS):
    """A series' training loss curve (loss optimised and plain CE), at most max_points points."""
    return experiments.training_curve(session=session, series_id=series.id, max_points=max_points)
