"""What the experiment pages read: experiments with their status, the per-loss comparison, loss curves."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.schemas.common import ErrorText, OrmModel, UtcDateTime


class ExperimentStatus(BaseModel):
    jobs: dict[str, int] = Field(description="Train jobs by status.")
    steps_done: int
    steps_total: int
    checkpoints: int = Field(description="Checkpoints saved so far.")
    scored: int = Field(description="Checkpoints whose scoring run on the eval corpus is done.")
    scoring_failed: int


class ExperimentInfo(OrmModel):
    id: int
    name: str
    train_corpus_id: int
    eval_corpus_id: int | None
    config: dict = Field(description="The training options every series shares, and the losses in order.")
    created_at: UtcDateTime


class ExperimentOut(ExperimentInfo):
    job_ids: list[int] = Field(description="The train job of each series, in series order.")
    series_ids: list[int] = Field(description="The experiment's series, one per loss, in the order of config.losses.")
    status: ExperimentStatus


class TrainingCurve(BaseModel):
    """A series' training loss curve as columns, one entry per logged step."""

    series_id: int
    total_points: int = Field(description="Points logged; the columns hold at most max_points of them.")
    step: list[int]
    tokens_seen: list[int]
    loss: list[float] = Field(description="The loss being optimised.")
    ce_loss: list[float] = Field(description="Plain cross-entropy on the same batch.")
    lr: list[float]
    tokens_per_s: list[float | None]
    grad_norm: list[float | None] = Field(description="Gradient norm before clipping.")
    gamma: list[float | None] = Field(description="The γ the step used (focal-adaptive: its batch's).")


class SeriesJob(BaseModel):
    """A series' train job, as its progress row shows it."""

    id: int
    status: str
    progress_done: int
    progress_total: int
    tokens_per_s: float | None
    detail: dict
    error: ErrorText | None = Field(description="The first line of the job's error (the Jobs page has the rest).")


class HeldoutMetrics(BaseModel):
    """The training job's own evaluation of a checkpoint on the held-out corpus (workers/training/evaluation.py;
    formulas in docs/formulas.md)."""

    tokens: int
    ce: float
    perplexity: float
    ece: float
    brier: float
    top1_accuracy: float
    nucleus_coverage: dict[str, float | None] = Field(
        description="Per top-p level, the share of tokens whose true token is inside the smallest top-p set.")
    mean_entropy: float | None = Field(description="Mean entropy of the predicted distribution (nats); = CE if calibrated.")
    entropy_bins: list[dict] = Field(description="Equal-count entropy bins: tokens, mean entropy, mean loss.")
    temperature: float = Field(description="T minimising held-out NLL of softmax(z/T): > 1 over-, < 1 under-confident.")
    temperature_tokens: int
    nll_before_temperature: float
    nll_after_temperature: float


class Sample(BaseModel):
    prompt: str
    continuation: str


class CheckpointPoint(BaseModel):
    """One checkpoint: its training loss, and its scoring run's numbers on the eval corpus (None
    while unscored)."""

    checkpoint_id: int
    step: int
    tokens_seen: int | None
    train_loss: float | None
    train_ce: float | None
    run_id: int | None
    run_status: str | None
    scored: bool
    n_tokens: int | None = None
    mean_loss: float | None = None
    perplexity: float | None = None
    ece: float | None = None
    brier: float | None = None
    top1_accuracy: float | None = None
    rare_loss: float | None = Field(None, description="Mean loss on tokens of the rarest types (30% of the text).")
    frequent_loss: float | None = Field(None, description="Mean loss on tokens of the most frequent types (30%).")
    easy_share: float | None = Field(None, description="Share of tokens with p ≥ 0.5.")
    heldout: HeldoutMetrics | None = None


class SeriesComparison(BaseModel):
    series_id: int
    name: str
    loss: str | None
    meta: dict
    job: SeriesJob | None
    checkpoints: list[CheckpointPoint]
    final: CheckpointPoint | None = Field(description="The last scored checkpoint.")
    curve: TrainingCurve
    samples: list[Sample] = Field(description="The final model's continuations of fixed held-out prompts.")
    collapse: dict[str, int | None] = Field(
        description="Step of the first held-out loss rise / training-loss spike / gradient-norm spike, or None.")


class ExperimentComparison(BaseModel):
    experiment: ExperimentInfo
    series: list[SeriesComparison]
