from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import OrmModel, UtcDateTime


class TrainingOptions(BaseModel):
    """Options shared by a single training job and an experiment; None = the preset's default.
    Values are checked by app.training_specs (the same checks the CLI and the worker use)."""

    model_config = ConfigDict(extra="forbid")

    preset: str = Field("tiny", description="tiny, small, base, tiny-llama, small-llama or base-llama")
    steps: int = 300
    save_every: int = Field(50, description="Checkpoint (and score on the eval corpus) every this many steps.")
    seed: int = 0
    tokenizer: str = Field("bpe", description="bpe (trained on the corpus) or smollm2")
    vocab_size: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    seq_len: int | None = None


class TrainingJobCreate(TrainingOptions):
    corpus_id: int
    series: str = Field(description="Name of the new model series.")
    loss: str = Field("ce", description="ce, focal:γ, poly1:ε, polyfocal:ε:γ, focal-schedule:γ0->γ1, flsd53, sigmoid-polyfocal:ε:γ:α")
    eval_corpus_id: int | None = Field(None, description="Held-out corpus each checkpoint is scored on.")


class ExperimentCreate(TrainingOptions):
    name: str
    corpus_id: int
    eval_corpus_id: int | None = None
    losses: list[str] = Field(min_length=1, description="One series per loss spec, e.g. [\"ce\", \"focal:2\"].")


class ExperimentStatus(BaseModel):
    jobs: dict[str, int] = Field(description="Train jobs by status.")
    steps_done: int
    steps_total: int
    checkpoints: int = Field(description="Checkpoints saved so far.")
    scored: int = Field(description="Checkpoints whose scoring run on the eval corpus is done.")
    scoring_failed: int


class ExperimentOut(OrmModel):
    id: int
    name: str
    train_corpus_id: int
    eval_corpus_id: int | None
    config: dict
    created_at: UtcDateTime
    status: ExperimentStatus | None = None
