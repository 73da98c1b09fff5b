"""Studies: one experiment per seed, the same losses in each, tagged with the study in their config;
rho1 series are added to a seed's experiment once its CE run has a final checkpoint to refer to.
Reading a study back gathers each loss's final numbers per seed and summarises them across seeds
(app.analytics.study). No torch here; the command that runs a study is focalscope/study.py."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.analytics.learned_at import DEFAULT_EASY_P
from app.analytics.study import summarise_study
from app.core.config import Settings
from app.models.checkpoint import ModelSeries
from app.models.corpus import Corpus
from app.models.job import Job
from app.models.training import Experiment
from app.schemas.experiments import ExperimentComparison, SeriesComparison
from app.schemas.training import ExperimentCreate, TrainingRequest
from app.services import training
from app.services.errors import DomainError
from app.services.experiments import experiment_comparison, find_experiment
from app.services.series_runs import aligned_runs
from app.services.series_scores import learned_at_histogram
from app.training_specs import RHO1, parse_loss_spec

# A study has a handful of experiments; reading more than this many to find them is a mistake.
MAX_EXPERIMENTS_SCANNED = 10_000
# What the study table compares, per loss and seed (from the final checkpoint).
STUDY_METRICS = (
    "ce", "perplexity", "ece", "brier", "top1_accuracy", "coverage_0.5", "coverage_0.8", "coverage_0.9",
    "coverage_0.95", "mean_entropy", "entropy_gap", "temperature", "nll_after_temperature", "temperature_gain", "rare_loss",
    "frequent_loss", "easy_share",
)
BASELINE = "ce"


def create_study_experiment(*, session: Session, settings: Settings, request: ExperimentCreate,
                            study: dict) -> Experiment:
    """An experiment of the study (its config carries `study`: name, seeds, command, versions)."""
    experiment = training.create_experiment(session=session, settings=settings, request=request)
    experiment.config = {**experiment.config, "study": study}
    session.flush()
    return experiment


def add_series(*, session: Session, settings: Settings, experiment: Experiment, loss: str) -> Job:
    """Train one more loss into an existing experiment with its options (rho1 against a series of it)."""
    config = dict(experiment.config)
    options = {k: v for k, v in config.items() if k not in ("losses", "study")}
    request = TrainingRequest(**options, corpus_id=experiment.train_corpus_id,
                              eval_corpus_id=experiment.eval_corpus_id, loss=loss,
                              series=training.experiment_series_name(experiment.name, loss), experiment_id=experiment.id)
    job = training.enqueue_training(session=session, request=request, settings=settings)
    experiment.config = {**config, "losses": [*config.get("losses", []), parse_loss_spec(loss).text]}
    session.flush()
    return job


def study_experiments(*, session: Session, ref: str) -> list[Experiment]:
    """The experiments of study `ref`, or the one experiment `ref` names (id or name)."""
    scanned = session.scalars(select(Experiment).order_by(Experiment.id).limit(MAX_EXPERIMENTS_SCANNED)).all()
    members = [e for e in scanned if ((e.config or {}).get("study") or {}).get("name") == ref]
    return members or [find_experiment(session=session, ref=ref)]


def loss_label(loss: str | None) -> str:
    """The loss as the study groups it: rho1 without its per-seed reference ("rho1:0.6")."""
    if not loss:
        return "?"
    spec = parse_loss_spec(loss)
    return f"rho1:{spec.ratio:g}" if spec.kind == RHO1 else spec.text


def final_metrics(series: SeriesComparison) -> dict:
    """The last evaluated checkpoint's numbers, its scoring run's rare/frequent/easy, and the collapse flags."""
    evaluated = [c for c in series.checkpoints if c.heldout is not None]
    row: dict = {"step": None, "collapse": series.collapse}
    if evaluated:
        last = evaluated[-1]
        h = last.heldout
        row.update(step=last.step, ce=h.ce, perplexity=h.perplexity, ece=h.ece, brier=h.brier,
                   top1_accuracy=h.top1_accuracy, mean_entropy=h.mean_entropy, temperature=h.temperature,
                   nll_after_temperature=h.nll_after_temperature,
                   temperature_gain=h.nll_before_temperature - h.nll_after_temperature,
                   entropy_gap=None if h.mean_entropy is None else h.mean_entropy - h.ce,
                   **{f"coverage_{level}": value for level, value in h.nucleus_coverage.items()})
    if series.final is not None:
        row.update(rare_loss=series.final.rare_loss, frequent_loss=series.final.frequent_loss,
                   easy_share=series.final.easy_share)
    return row


def study_view(*, session: Session, ref: str) -> dict:
    """Everything the report shows: the study's settings, each experiment's comparison, the final numbers
    per loss and seed, and their summary across seeds."""
    experiments = study_experiments(session=session, ref=ref)
    comparisons: list[ExperimentComparison] = [
        experiment_comparison(session=session, experiment_id=e.id) for e in experiments]
    runs: dict[str, dict[int, dict]] = {}
    for comparison in comparisons:
        seed = comparison.experiment.config.get("seed", 0)
        for series in comparison.series:
            runs.setdefault(loss_label(series.loss), {})[seed] = final_metrics(series)
    study = (experiments[0].config or {}).get("study") or {"name": experiments[0].name}
    return {
        "study": study, "experiments": [e.name for e in experiments], "comparisons": comparisons, "runs": runs,
        "table": summarise_study(runs, STUDY_METRICS, baseline=BASELINE),
        "learned_at": learned_at_by_loss(session=session, comparison=comparisons[0]) if comparisons else {},
    }


def learned_at_by_loss(*, session: Session, comparison: ExperimentComparison) -> dict[str, dict]:
    """Per loss of one experiment: the share of held-out tokens learned (easy, p ≥ 1/2, from then on) by
    each checkpoint step, from its scoring runs (app.analytics.learned_at). Losses whose runs are not
    all scored are left out."""
    corpus = session.get(Corpus, comparison.experiment.eval_corpus_id) if comparison.experiment.eval_corpus_id else None
    found: dict[str, dict] = {}
    for series in comparison.series if corpus is not None else []:
        try:
            aligned = aligned_runs(session=session, series=session.get(ModelSeries, series.series_id), corpus=corpus)
            histogram = learned_at_histogram(session=session, aligned=aligned, tau_easy=DEFAULT_EASY_P)
        except DomainError:
            continue
        overall = histogram["overall"]
        total = sum(overall["counts"]) + overall["never"]
        learned = [sum(overall["counts"][:i + 1]) / total if total else None for i in range(len(overall["counts"]))]
        found[loss_label(series.loss)] = {"steps": histogram["steps"], "learned_share": learned}
    return found
